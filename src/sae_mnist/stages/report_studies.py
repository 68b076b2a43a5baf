"""The report's study sections: the recipe ablation, the wide code beside the published 98.8%, and robustness.

Robustness (per architecture, from stages/report.py's analyse() results and the robustness stages' files): the
primary estimand's sign under each check, the other interpolation rule, every other activity threshold, and
the frontiers retrained on one seed at other budgets and learning rates, as a table, a generated sentence (which
the Verdict section repeats) and `figures/robustness-<arch>.png`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import plots, reporting
from ..stats import summarize

STUDY_LABEL = {"budget": "budget", "lr": "learning rate"}


def ablation_section(ablations: dict[str, dict], seed: int) -> str:
    """The Recipe ablation section: per architecture, each variant's default under each recipe."""
    md = ["## Recipe ablation\n",
          f"Each variant's default setting on seed {seed}, trained with the full recipe, without each part in turn, and "
          "with none of them (the recipe before: raw inputs, independent initialisation, the full decoder gradient, "
          "constant learning rate, full penalty from the first step). Test FVU (truncated code), L0 and dead units "
          "(of all units; conv: channels); ✗ marks a run that did not converge.\n"]
    for arch, abl in ablations.items():
        md.append(f"### {arch}\n")
        by = {(m["recipe"], m["variant"]): m for m in abl["models"]}
        recipes = list(dict.fromkeys(m["recipe"] for m in abl["models"]))
        names = list(dict.fromkeys(m["variant"] for m in abl["models"]))
        rows = []
        for rec in recipes:
            row = [rec]
            for n in names:
                m = by[(rec, n)]["metrics"]
                mark = "" if by[(rec, n)]["convergence"]["converged"] else " ✗"
                row.append(f"{m['dead_units']}/{m['code_units']} / {m['fvu']:.4f} / {m['l0']:.1f}{mark}")
            rows.append(row)
        md.append(reporting.markdown_table(["recipe"] + [f"{n}: dead / FVU / L0" for n in names], rows))
    return "\n".join(md)


def wide_section(wide: list[dict], published: dict) -> str:
    """The subsection of Linear probes on the wide linear codes (one file per seed) beside a published accuracy."""
    md = ["### A wide code beside the published 98.8%\n",
          f"Published: {published['source']}: ≈ {published['accuracy']:.3f}. This benchmark's {wide[0]['hidden']}-unit "
          f"linear SAEs, same recipe and budget, {len(wide)} seed(s) (mean [95% CI]):\n"]
    by_variant: dict[str, list] = {}
    for w in wide:
        for m in w["models"]:
            setting = ", ".join(f"{k} {v:g}" for k, v in m["setting"].items())
            by_variant.setdefault(f"{m['variant']} ({setting})", []).append(m)
    rows = []
    for name, ms in by_variant.items():
        acc = summarize([m["metrics"]["probe_accuracy"] for m in ms], bounds="fraction", resolution=1e-4)
        rows.append([name, reporting.mean_ci(acc, ".4f"), f"{np.mean([m['metrics']['l0'] for m in ms]):.1f}",
                     f"{np.mean([m['metrics']['fvu'] for m in ms]):.4f}",
                     f"{sum(m['convergence']['converged'] for m in ms)} / {len(ms)}",
                     f"{sum(m['metrics']['probe_converged'] == 1.0 for m in ms)} / {len(ms)}"])
    md.append(reporting.markdown_table(["wide model", "probe accuracy", "L0", "FVU", "converged", "probe converged"],
                                       rows))
    return "\n".join(md)


@dataclass(frozen=True)
class Check:
    """One row of an architecture's robustness table: the primary estimand as computed one way."""

    label: str  # the table's words, with the details (epochs, learning rate, seed)
    name: str  # the sentence's words
    est: dict | None  # a reporting.primary_estimand, None where the frontiers do not overlap
    role: str  # "primary", "reference" (the primary on one seed) or "check" (counted in the sentence)
    drawn: bool = False  # on the primary threshold's L0 axis: a curve of the figure

    @property
    def diff(self) -> float | None:
        return None if self.est is None else self.est["difference"].diff


def load_robustness(robustness_dir: Path) -> dict[str, dict[str, dict]]:
    """The robustness stages' files: architecture -> study -> file."""
    from ..io import read_json

    found: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(robustness_dir).glob("*.json")):
        data = read_json(path)
        found.setdefault(data["arch"], {})[data["study"]] = data
    return found


def robustness_checks(r: dict, theta: float, seed: int, studies: dict[str, dict],
                      l0_range: tuple[float, float]) -> list[Check]:
    """The rows of one architecture's robustness table, r its analyse() result (primary estimand not None):
    the primary; the primary on `seed` alone (the main frontier's points of that seed); the other interpolation
    rule; each other threshold; each variation of each study in `studies` (study -> a robustness file), its
    single-seed estimand at `theta` inside `l0_range`, as the primary's."""
    primary = r["estimands"][theta]
    own = {p: [pt for pt in r["points"][p] if pt["seed"] == seed] for p in ("l1", "kl")}
    checks = [Check(f"the primary ({len(primary['seeds'])} seeds)", "the primary", primary, "primary", True),
              Check(f"the primary on seed {seed} alone (the one-seed checks' reference)", f"seed {seed} alone",
                    reporting.points_estimand(own["l1"], own["kl"], theta, l0_range), "reference", True)]
    other = reporting.INTERPOLATION[not primary["log_fvu"]]
    checks.append(Check(f"the other interpolation: {other}", "the other interpolation", r.get("sensitivity"), "check"))
    for t, est in sorted(r["estimands"].items()):
        if t != theta:
            checks.append(Check(f"threshold {t:g} (over the covered range at {t:g}, not the declared one)",
                                f"threshold {t:g}", est, "check"))
    for study, data in studies.items():
        for v in data["variations"]:
            pts = {p: [pt for pt in v["points"] if pt["penalty"] == p] for p in ("l1", "kl")}
            trained = f"{v['epochs']} epoch{'s' * (v['epochs'] != 1)}" if study == "budget" else f"lr {v['lr']:.3g}"
            name = f"{STUDY_LABEL[study]} ×{v['factor']:g}"
            checks.append(Check(f"{name} ({trained}; seed {data['seed']})", name,
                                reporting.points_estimand(pts["l1"], pts["kl"], theta, l0_range), "check", True))
    return checks


def same_sign(check: Check, primary: float) -> bool | None:
    """Whether the check's KL − L1 has the primary's sign; None where it has no estimate."""
    return None if check.diff is None else bool(np.sign(check.diff) == np.sign(primary))


def robustness_rows(checks: list[Check]) -> list[list[str]]:
    """check | KL − L1 | sign as the primary?"""
    primary = checks[0].diff
    rows = []
    for c in checks:
        agrees = same_sign(c, primary)
        sign = "–" if agrees is None else "yes" if agrees else "no"
        if c.role == "primary":
            sign = "(the primary)"
        elif c.role == "reference":
            sign += " (reference, not counted)"
        rows.append([c.label, "no overlap" if c.diff is None else f"{c.diff:+.4f}", sign])
    return rows


def robustness_sentence(arch: str, checks: list[Check]) -> str:
    """'linear, robustness: the sign of KL − L1 (+0.0386: L1 reconstructs better) survives 5 of 6 checks; it does
    not under: learning rate ×3.' Counted: the checks (not the primary, not the one-seed reference), a check
    without an estimate neither survives nor fails; the reference is named when its sign differs."""
    primary = checks[0].diff
    counted = [c for c in checks if c.role == "check"]
    held = [c for c in counted if same_sign(c, primary) is True]
    failed = [c.name for c in counted if same_sign(c, primary) is False]
    missing = [c.name for c in counted if c.diff is None]
    who = f"{reporting.BETTER_BY_SIGN[int(np.sign(primary))]} reconstructs better" if primary else "no difference"
    held_text = f"all {len(counted)}" if len(held) == len(counted) else f"{len(held)} of {len(counted)}"
    text = f"{arch}, robustness: the sign of KL − L1 ({primary:+.4f}: {who}) survives {held_text} checks"
    if failed:
        text += f"; it does not under: {', '.join(failed)}"
    if missing:
        text += f"; no estimate (the frontiers do not overlap) under: {', '.join(missing)}"
    text += "."
    reference = next((c for c in checks if c.role == "reference"), None)
    if reference is not None and same_sign(reference, primary) is False:
        text += (f" On {reference.name}, the one-seed checks' reference, the sign is already the opposite "
                 f"({reference.diff:+.4f}).")
    elif reference is not None and reference.diff is None:
        text += f" On {reference.name}, the one-seed checks' reference, the frontiers do not overlap."
    return text


def add_robustness(results: dict, robustness: dict[str, dict[str, dict]], theta: float, seed: int,
                   l0_ranges) -> None:
    """Each architecture's robustness checks and sentence, into its analyse() result (where it has a primary)."""
    for arch, r in results.items():
        if r["estimands"][theta] is not None:
            r["robustness"] = robustness_checks(r, theta, seed, robustness.get(arch, {}), l0_ranges.of(arch))
            r["robustness_sentence"] = robustness_sentence(arch, r["robustness"])


def robustness_section(results: dict, theta: float, seed: int, factors: dict[str, list[float]]) -> str:
    """The Robustness section's Markdown (figures from save_robustness_figures)."""
    listed = "; ".join(f"{STUDY_LABEL[s]} × {', '.join(f'{f:g}' for f in fs)}" for s, fs in factors.items())
    md = ["## Robustness\n",
          "Does the sign of the primary estimand hold when the analysis or the training changes? Per architecture, "
          "KL − L1 in FVU averaged over the grid: the primary over every seed; the same on seed "
          f"{seed} alone, the reference the one-seed checks stand against; under the other interpolation rule; at "
          "each other activity threshold (over the L0 range every seed's frontiers cover at that threshold, not the "
          f"declared one); and retrained on seed {seed} ({listed}): every L1 and KL frontier setting as one stack per "
          "factor, everything else as the train stage has it (the budget multiplies train.epochs, the warm-ups and "
          f"the decay stretch with it), read at threshold {theta:g} inside the declared range like the primary. One "
          "seed has no interval: a one-seed check whose sign differs where the primary is small says that training "
          "choices move the difference by as much as it is.\n"]
    for arch, r in results.items():
        md.append(f"### {arch}\n")
        if "robustness" not in r:
            md.append(f"No primary estimand for {arch} (the frontiers do not overlap): nothing to check.\n")
            continue
        md.append(reporting.markdown_table(["check", "KL − L1 (estimand)", "sign as the primary?"],
                                           robustness_rows(r["robustness"])))
        md.append(r["robustness_sentence"] + "\n")
        md.append(f"![{arch}: KL − L1 under each check](figures/robustness-{arch}.png)\n")
    return "\n".join(md)


def save_robustness_figures(results: dict, theta: float, figures: Path) -> None:
    """figures/robustness-<arch>.png: KL − L1 along the grid of each check on the primary threshold's L0 axis."""
    for arch, r in results.items():
        if "robustness" not in r:
            continue
        curves = {c.label: (np.asarray(c.est["grid"]), np.array([d.diff for d in c.est["at_grid"]]))
                  for c in r["robustness"] if c.drawn and c.est is not None}
        plots.save(plots.robustness_curves(arch, curves, theta), figures / f"robustness-{arch}.png")


def robustness_json(results: dict) -> dict:
    """The robustness checks for summary.json: per architecture, each check's KL − L1 and sign, and the sentence."""
    return {arch: {"sentence": r["robustness_sentence"],
                   "checks": [{"check": c.label, "role": c.role, "kl_minus_l1": c.diff,
                               "same_sign": same_sign(c, r["robustness"][0].diff)} for c in r["robustness"]]}
            for arch, r in results.items() if "robustness" in r}
