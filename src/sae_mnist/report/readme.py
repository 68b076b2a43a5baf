"""The README's results block and docs/results.md's, generated from the report stage's reports/summary.json: never
typed by hand.

    python -m sae_mnist.report.readme [--check]     (make readme; --check: exit 1 if either block is stale)

rewrites what lies between each file's two `results:` marker lines: in the README the primary estimand and the
verdicts (block), in docs/results.md where the numbers come from, the sensitivity and robustness lines, every
activity threshold and the report's checks (results_block). A test checks both committed files against the committed
summary, so new results cannot land beside an old block.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from .text import check_mark, l0_text, p_value

BEGIN = "<!-- results:begin (make readme: generated from the report stage's reports/summary.json; do not edit) -->"
END = "<!-- results:end -->"
WIDTH = 120


def block(summary: dict) -> str:
    """The lines between the markers: each architecture's primary estimand in a table, its verdict sentence, and
    where the full report is."""
    rows = ["| architecture | KL − L1 in FVU (primary estimand) | 95% CI | Holm p | L0 range | seeds |",
            "| --- | --- | --- | --- | --- | --- |"]
    for arch, p in summary["primary"].items():
        if "diff" not in p:
            rows.append(f"| {arch} | no overlap | – | – | – | – |")
            continue
        lo, hi = p["l0_range"]
        rows.append(f"| {arch} | {p['diff']:+.4f} | [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] | {p['holm_p']:.3g} | "
                    f"{lo:.3g}–{hi:.3g} | {len(p['seeds'])} |")
    verdicts = [textwrap.fill(text, WIDTH, initial_indent="- ", subsequent_indent="  ")
                for text in summary["verdicts"].values()]
    smoke = ["> Smoke run: not for citing."] if summary["smoke"] else []
    return "\n".join(smoke + rows + ["", "Positive: L1 reconstructs better at matched sparsity.", ""] + verdicts
                     + ["", "The full report: [`reports/report.md`](reports/report.md) (or "
                        "[`reports/report.html`](reports/report.html))."])


def _ci(v: dict) -> str:
    return f"[{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]"


def results_block(summary: dict) -> str:
    """docs/results.md's generated part: provenance, each architecture's sensitivity and robustness line, the
    average KL − L1 at every activity threshold, and the report's checks."""
    source = (f"The committed report's summary (`reports/summary.json`): **{summary['dataset']}**, data digest "
              f"`{summary['data_digest']}`, `params.yaml` SHA-256 `{summary['params_sha256']}`, models trained at "
              + ", ".join(f"`{c[:7]}`" for c in summary["git_commits"]) + ". The report's *Cite these results* names "
              "the commit it was generated at.")
    md = ["## Where the numbers come from", "", textwrap.fill(source, WIDTH, break_long_words=False), "",
          "## Sensitivity and robustness", ""]
    for arch, sens in summary["sensitivity"].items():
        primary = summary["primary"].get(arch, {})
        if "diff" in sens and "diff" in primary:
            md.append(textwrap.fill(
                f"{arch}, sensitivity: with {sens['interpolation']}, the average KL − L1 is {sens['diff']:+.4f} FVU "
                f"(95% CI {_ci(sens)}, paired p {p_value(sens['p'])}); the primary estimand: {primary['diff']:+.4f}.",
                WIDTH, initial_indent="- ", subsequent_indent="  "))
    md += [textwrap.fill(r["sentence"], WIDTH, initial_indent="- ", subsequent_indent="  ")
           for r in summary["robustness"].values()]
    md += ["", "## Every activity threshold", "",
           "| architecture | threshold | L0 range | KL − L1 (FVU) | 95% CI | paired p | Holm p |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for arch, by_threshold in summary["by_threshold"].items():
        primary = summary["primary"].get(arch, {})
        for key, v in sorted(by_threshold.items(), key=lambda kv: float(kv[0])):
            is_primary = float(key) == primary.get("threshold")
            name = f"{arch} (primary)" if is_primary else arch
            if "diff" not in v:
                md.append(f"| {name} | {float(key):g} | no overlap | – | – | – | – |")
                continue
            lo, hi = primary["l0_range"] if is_primary else v["l0_range"]
            md.append(f"| {name} | {float(key):g} | {l0_text(lo)} – {l0_text(hi)} | {v['diff']:+.4f} | {_ci(v)} | "
                      f"{p_value(v['p'])} | {p_value(primary['holm_p']) if is_primary else '–'} |")
    md += ["", "## The report's checks", "",
           "Against the benchmark's own targets (✗ marks one not met; the report gives the numbers):", ""]
    md += [textwrap.fill(f"{check_mark(c['ok'])} {c['check']}", WIDTH, initial_indent="- ",
                         subsequent_indent="  ") for c in summary["checks"]]
    return "\n".join((["> Smoke run: not for citing.", ""] if summary["smoke"] else []) + md)


def updated(text: str, summary: dict, make=block) -> str:
    """`text` with the part between its markers replaced by make(summary)."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"the file must hold the marker lines {BEGIN!r} and {END!r} once each")
    head, rest = text.split(BEGIN + "\n")
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{make(summary)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--results-doc", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--summary", type=Path, default=Path("reports/summary.json"))
    parser.add_argument("--check", action="store_true", help="exit 1 if a block differs from the summary's")
    args = parser.parse_args(argv)
    summary = json.loads(args.summary.read_text())
    stale = []
    for path, make in ((args.readme, block), (args.results_doc, results_block)):
        current = path.read_text()
        new = updated(current, summary, make)
        if args.check:
            stale += [path] if new != current else []
            continue
        path.write_text(new)
        print(f"{path}: results block from {args.summary}")
    for path in stale:
        print(f"{path}'s results block is stale: run `make readme`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
