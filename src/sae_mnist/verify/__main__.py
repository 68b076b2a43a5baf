"""`python -m sae_mnist.verify` (`make verify`): see the package docstring."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from .. import verify as package
from ..errors import BenchmarkError
from ..io import read_json
from . import compare, environment, regenerating
from .retrain import VerifyError, committed_points, load_data, parse_points, prepare_data, retrain, sample_points

DEFAULT_POINTS = 3
REQUIRED = ("params.yaml", "dvc.yaml", "reports/summary.json", "reports/report.md", "metrics/headline.json", "frontier",
            "robustness")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sae_mnist.verify", description=package.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", nargs="+", metavar="NAME@SEED",
                        help="frontier points to retrain, e.g. conv-l1-lam=1.2@1 linear-kl@2 (default: a sample)")
    parser.add_argument("--n-points", type=int, default=DEFAULT_POINTS,
                        help=f"how many points the sample holds (default {DEFAULT_POINTS}: both architectures, both "
                        "compared penalties)")
    parser.add_argument("--sample-seed", type=int, help="draws the sample (default: a fresh one, printed)")
    parser.add_argument("--data", type=Path, help="an MNIST directory the download stage wrote; default: data/mnist "
                        "if it holds the committed digest, else a download into the scratch directory ($MNIST_MIRROR "
                        "first)")
    parser.add_argument("--json", type=Path, help="also write the full result here, to attach to an issue")
    parser.add_argument("--no-retrain", action="store_true", help="check the identifiers and numbers only (seconds)")
    parser.add_argument("--verbose", action="store_true", help="print every recomputed number")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (default: here)")
    args = parser.parse_args(argv)
    if args.n_points < 1:
        parser.error("--n-points must be at least 1")
    return args


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def check_identifiers(root: Path, threads: int) -> tuple[list[dict], list[dict]]:
    print("\n1. Identifiers and environment")
    ids = environment.identifiers(root)
    print_table(["identifier", "file", "summary.json records", "", "the file"],
                [[r["name"], r["file"], r["committed"], "✓" if r["ok"] else "✗",
                  ("the same" if r["found"] == r["committed"] else r["found"])
                  + (f" ({r['note']})" if r.get("note") else "")] for r in ids])
    env = environment.compare_environments(environment.committed_environment(root),
                                           environment.reader_environment(threads))
    print("\n  The environment: committed (reports/report.md, How to cite) and here; differences are flagged, not "
          "failed (another CPU moves retrained numbers by float rounding)")
    print_table(["item", "committed", "here", ""], [[r["item"], r["committed"], r["here"], "differs" * r["differs"]]
                                                   for r in env])
    return ids, env


def check_numbers(root: Path, verbose: bool) -> list[dict]:
    print("\n2. The numbers follow from the result files: reports/summary.json and metrics/headline.json against an "
          "independent recomputation from frontier/ and robustness/ (sae_mnist/verify/recompute.py), relative "
          f"tolerance {compare.RELATIVE:g}")
    rows, skipped = compare.compare_recomputed(root)
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[compare.group_of(r["name"])].append(r)
    table = []
    for group, members in groups.items():
        numeric = [r for r in members if r["ok"] and isinstance(r["committed"], float) and r["committed"]]
        worst = max((abs(r["recomputed"] - r["committed"]) / abs(r["committed"]) for r in numeric
                     if abs(r["committed"]) != float("inf")), default=0.0)
        bad = sum(not r["ok"] for r in members)
        table.append([group, str(len(members)), "0 (bitwise)" if worst == 0 else f"{worst:.1e}",
                      "✓" if not bad else f"✗ {bad} differ"])
    print_table(["numbers", "count", "largest relative difference", ""], table)
    for r in rows:
        if verbose or not r["ok"]:
            print(f"  {'✓' if r['ok'] else '✗ DIFFERS:'} {r['name']} ({r['file']}): committed {r['committed']}, "
                  f"recomputed {r['recomputed']}")
    kinds = sorted({compare.skipped_kind(name) for name in skipped})
    print(f"  not recomputed ({len(skipped)} numbers, outside the Verdict): {'; '.join(kinds)}")
    return rows


def choose_points(root: Path, names: list[str] | None, n: int, sample_seed: int | None) -> tuple[list, int | None]:
    points = committed_points(root)
    if names:
        return parse_points(names, points), None
    seed = secrets.randbelow(10**6) if sample_seed is None else sample_seed
    return sample_points(points, n, seed), seed


def check_training(root: Path, args: argparse.Namespace, params, scratch: Path) -> tuple[list[dict], int | None]:
    """Retrain the chosen points and compare them: (one row per number, the sample seed or None if named)."""
    points, seed = choose_points(root, args.points, args.n_points, args.sample_seed)
    how = "named" if seed is None else f"sampled with seed {seed} (repeat: --sample-seed {seed})"
    print(f"\n3. The result files follow from training: {len(points)} frontier points, {how}, each retrained alone "
          f"from scratch ({params.train.threads} threads). Relative tolerance in FVU and L0 (docs/verify.md): "
          + "; ".join(f"{kind} {t['fvu']:g} and {t['l0']:g}" for kind, t in (
              ("KL", compare.retrain_tolerance("kl")), ("L1, unpenalised, TopK", compare.retrain_tolerance("l1")))))
    summary = read_json(root / "reports" / "summary.json")
    data_dir = prepare_data(params, scratch, args.data, summary["data_digest"], workspace=root)
    print(f"  MNIST from {data_dir}: digest {summary['data_digest']}, as committed", flush=True)
    data = load_data(data_dir, params.split.validation)
    rows = []
    for point in points:
        metrics, seconds = retrain(params, point, data)
        print(f"  {point.label}: retrained in {seconds:.0f} s", flush=True)
        rows += [{"point": point.label, "file": str(point.file), **r, "seconds": seconds}
                 for r in compare.compare_point(point.metrics, metrics, compare.retrain_tolerance(point.penalty))]
    print_table(["point", "threshold", "metric", "committed", "retrained", "relative difference", ""],
                [[r["point"], r["threshold"], r["metric"], f"{r['committed']:.10g}", f"{r['retrained']:.10g}",
                  "0 (bitwise)" if r["bitwise"] else f"{r['relative_difference']:.1e}", "✓" if r["ok"] else "✗"]
                 for r in rows])
    return rows, seed


def conclude(ids: list[dict], numbers: list[dict], trained: list[dict], seconds: float) -> int:
    failures = [f"{r['name']} in {r['file']}: summary.json records {r['committed']}, found {r['found']}"
                + (f" ({r['note']})" if r.get("note") else "") for r in ids if not r["ok"]]
    failures += [f"{r['name']} ({r['file']}): committed {r['committed']}, recomputed {r['recomputed']}"
                 for r in numbers if not r["ok"]]
    failures += [f"{r['point']} {r['metric']} at threshold {r['threshold']} ({r['file']}): committed {r['committed']}, "
                 f"retrained {r['retrained']} (relative difference {r['relative_difference']:.2e})"
                 for r in trained if not r["ok"]]
    total = len(ids) + len(numbers) + len(trained)
    bitwise = sum(r["bitwise"] for r in trained)
    retrained = f"{len(trained)} retrained numbers ({bitwise} of them bitwise)" if trained else "no retraining"
    print(f"\n{total - len(failures)} of {total} verified in {seconds:.0f} s: {len(ids)} identifiers, "
          f"{len(numbers)} recomputed numbers, {retrained}")
    if failures:
        print(f"NOT VERIFIED: {len(failures)} differ:\n" + "\n".join(f"  - {f}" for f in failures))
        print("What to do: docs/verify.md, 'On a mismatch'.")
        return 1
    print(f"verified {total} of {total}")
    return 0


def forwarded(args: argparse.Namespace, root: Path, tree: Path) -> list[str]:
    """The reader's options, for a verification of `tree` instead of `root`: paths absolute, and the workspace's
    MNIST passed on (a scratch worktree has none; its digest is still checked)."""
    options = ["--n-points", str(args.n_points)]
    if args.points:
        options += ["--points", *args.points]
    if args.sample_seed is not None:
        options += ["--sample-seed", str(args.sample_seed)]
    options += [flag for flag, on in (("--no-retrain", args.no_retrain), ("--verbose", args.verbose)) if on]
    if args.json:
        options += ["--json", str(args.json.resolve())]
    data = args.data.resolve() if args.data else root / "data" / "mnist"
    return options + (["--data", str(data)] if data.is_dir() else []) + ["--root", str(tree)]


def verify_newest_current(args: argparse.Namespace, root: Path,
                          stale: dict[str, dict[str, list[str]]]) -> int:
    """HEAD's results are being regenerated (`stale` stages): verify the newest commit whose results were current,
    with its own code, params and result files, in a scratch worktree (regenerating.py)."""
    print(f"HEAD's results are being regenerated: {len(stale)} stages are stale ({', '.join(list(stale)[:4])}"
          f"{', ...' if len(stale) > 4 else ''}; `make check-results` names why). The results a reader cites are the "
          "newest commit's whose results were current; looking for it in HEAD's history", flush=True)
    commit = regenerating.newest_current(root)
    if commit is None:
        print(f"cannot verify: none of the last {regenerating.MAX_WALK} commits has current results (or the clone is "
              "too shallow: `git fetch --unshallow`); regenerate them with `make repro`", file=sys.stderr)
        return 2
    subject = regenerating.git(root, "log", "-1", "--format=%s", commit)
    print(f"Verifying {commit[:7]} ({subject[:100]}) with its own code, params and results, in a scratch "
          "worktree:\n", flush=True)
    with regenerating.checkout(root, commit) as tree:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree / "src"),
                                                                         os.environ.get("PYTHONPATH")]))}
        return subprocess.run([sys.executable, "-m", "sae_mnist.verify", *forwarded(args, root, tree)],
                              cwd=tree, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    from ..params import load_params
    from ..provenance import git_commit

    args = parse_args(argv)
    started, root = time.perf_counter(), args.root.resolve()
    missing = [name for name in REQUIRED if not (root / name).exists()]
    if missing:
        print(f"cannot verify: {root} has no committed results to check ({', '.join(missing)} missing); run it in a "
              "checkout of a commit with committed results, or pass --root", file=sys.stderr)
        return 2
    if (root / ".git").exists() and not regenerating.has_uncommitted_changes(root):
        try:
            stale = regenerating.stale(root)
        except RuntimeError:  # dvc cannot read this checkout: the identifiers check below says so
            stale = {}
        if stale:  # committed changes since the results: verify the results a reader cites, where they are current
            return verify_newest_current(args, root, stale)
    print(f"Verifying the committed results of {root} at commit {git_commit(str(root))}")
    try:
        params = load_params(root / "params.yaml")
        ids, env = check_identifiers(root, params.train.threads)
        numbers = check_numbers(root, args.verbose)
        with tempfile.TemporaryDirectory(prefix="sae-mnist-verify-") as scratch:
            trained, seed = ([], None) if args.no_retrain else check_training(root, args, params, Path(scratch))
    except (VerifyError, BenchmarkError) as e:  # a download that failed, params that do not validate
        print(f"\ncannot verify: {e}", file=sys.stderr)
        return 2
    status = conclude(ids, numbers, trained, time.perf_counter() - started)
    if args.json:
        args.json.write_text(json.dumps({"commit": git_commit(str(root)), "verified": status == 0,
                                         "seconds": time.perf_counter() - started, "sample_seed": seed,
                                         "identifiers": ids,
                                         "environment": env, "numbers": numbers, "retrained": trained},
                                        indent=1, default=str) + "\n")
        print(f"the full result: {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
