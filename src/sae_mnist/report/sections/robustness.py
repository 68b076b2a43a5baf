"""The Robustness section: the primary estimand's sign under each check, the other interpolation rule, every other
activity threshold, and the frontiers retrained on one seed at other budgets and learning rates, as a table, a
generated sentence (which the Verdict section repeats) and `figures/robustness-<arch>.png`.

The retrained studies are evaluated on the validation split (their files say `"split": "validation"`): each is set
beside the main frontier's same seed on the same split, its reference; that seed's test numbers are shown, not
counted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...estimand import INTERPOLATION, Estimand, points_estimand
from ...params import COMPARED
from ...plots import save
from ..analysis import ArchResult
from ..curve import BETTER_BY_SIGN
from ..figures import robustness_curves
from ..inputs import split_of
from ..text import PENALTY_LABEL, markdown_table

STUDY_LABEL = {"budget": "budget", "lr": "learning rate"}


@dataclass(frozen=True)
class RobustnessCheck:
    """One row of an architecture's robustness table: the primary estimand as computed one way."""

    label: str  # the table's words, with the details (epochs, learning rate, seed, split)
    name: str  # the sentence's words
    est: Estimand | None  # None where the frontiers do not overlap
    role: str  # "primary"; "reference" (one seed, a one-seed check's split); "context" (one seed, shown, not
    # counted); or "check" (counted in the sentence)
    drawn: bool = False  # on the primary threshold's L0 axis: a curve of the figure
    split: str = ""  # where a retrained study's metrics come from (its file's "split")
    study: str = ""  # a retrained study's name ("budget", "lr") and its factor
    factor: float | None = None

    @property
    def diff(self) -> float | None:
        return None if self.est is None else self.est.difference.diff


def trained_text(study: str, variation: dict) -> str:
    """'20 epochs', 'lr 0.009' or, where the penalties trained at their own rates, 'L1 lr 0.027, KL lr 0.081'."""
    if study == "budget":
        return f"{variation['epochs']} epoch{'s' * (variation['epochs'] != 1)}"
    rates = {pt["penalty"]: pt["training"]["lr"] for pt in variation["points"] if "lr" in pt.get("training", {})}
    if len(set(rates.values())) > 1:
        return ", ".join(f"{PENALTY_LABEL[p]} lr {rates[p]:.3g}" for p in COMPARED if p in rates)
    return f"lr {next(iter(rates.values())):.3g}"


def one_seed_rows(r: ArchResult, theta: float, seed: int, l0_range: tuple[float, float]) -> list[RobustnessCheck]:
    """The primary's seed `seed` alone: on the test split (the main frontier's metrics; shown, not counted), and
    on the validation split (the same points' validation metrics), the one-seed checks' reference: a study,
    retrained on that seed and read on the validation split, stands beside the same seed on the same images."""
    own = {p: [pt for pt in r.points[p] if pt["seed"] == seed] for p in COMPARED}
    valid = {p: [{**pt, "metrics": pt["validation"]} for pt in own[p]] for p in COMPARED}
    return [RobustnessCheck(f"the primary on seed {seed} alone (test split; not counted)",
                            f"seed {seed} alone on the test split",
                            points_estimand(own["l1"], own["kl"], theta, l0_range), "context", True),
            RobustnessCheck(f"seed {seed} alone on the validation split (the one-seed checks' reference)",
                            f"seed {seed} alone on the validation split",
                            points_estimand(valid["l1"], valid["kl"], theta, l0_range), "reference", True,
                            "validation")]


def robustness_checks(r: ArchResult, theta: float, seed: int, studies: dict[str, dict],
                      l0_range: tuple[float, float]) -> list[RobustnessCheck]:
    """The rows of one architecture's robustness table, r its analyse() result (primary estimand not None):
    the primary; the primary on `seed` alone (one_seed_rows: on test and on validation); the other interpolation
    rule; each other threshold; each variation of each study in `studies` (study -> a robustness file), its
    single-seed estimand at `theta` inside `l0_range`, as the primary's, on the split its file names."""
    primary = r.estimands[theta]
    checks = [RobustnessCheck(f"the primary ({len(primary.seeds)} seeds)", "the primary", primary, "primary", True),
              *one_seed_rows(r, theta, seed, l0_range)]
    other = INTERPOLATION[not primary.log_fvu]
    checks.append(RobustnessCheck(f"the other interpolation: {other}", "the other interpolation", r.sensitivity,
                                  "check"))
    for t, est in sorted(r.estimands.items()):
        if t != theta:
            checks.append(RobustnessCheck(f"threshold {t:g} (over the covered range at {t:g}, not the declared one)",
                                          f"threshold {t:g}", est, "check"))
    for study, data in studies.items():
        split = split_of(data)
        for v in data["variations"]:
            pts = {p: [pt for pt in v["points"] if pt["penalty"] == p] for p in COMPARED}
            name = f"{STUDY_LABEL[study]} ×{v['factor']:g}"
            label = f"{name} ({trained_text(study, v)}; seed {data['seed']}; {split} split)"
            checks.append(RobustnessCheck(label, name, points_estimand(pts["l1"], pts["kl"], theta, l0_range),
                                          "check", True, split, study, float(v["factor"])))
    return checks


def same_sign(check: RobustnessCheck, primary: float) -> bool | None:
    """Whether the check's KL − L1 has the primary's sign; None where it has no estimate."""
    return None if check.diff is None else bool(np.sign(check.diff) == np.sign(primary))


def robustness_rows(checks: list[RobustnessCheck]) -> list[list[str]]:
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
        elif c.role == "context":
            sign += " (not counted)"
        rows.append([c.label, "no overlap" if c.diff is None else f"{c.diff:+.4f}", sign])
    return rows


def robustness_sentence(arch: str, checks: list[RobustnessCheck]) -> str:
    """'linear, robustness: the sign of KL − L1 (+0.0386: L1 reconstructs better) survives 5 of 6 checks; it does
    not under: learning rate ×3.' Counted: the checks (not the primary, not the one-seed reference), a check
    without an estimate neither survives nor fails; the reference is named when its sign differs."""
    primary = checks[0].diff
    counted = [c for c in checks if c.role == "check"]
    held = [c for c in counted if same_sign(c, primary) is True]
    failed = [c.name for c in counted if same_sign(c, primary) is False]
    missing = [c.name for c in counted if c.diff is None]
    who = f"{BETTER_BY_SIGN[int(np.sign(primary))]} reconstructs better" if primary else "no difference"
    held_text = f"all {len(counted)}" if len(held) == len(counted) else f"{len(held)} of {len(counted)}"
    text = f"{arch}, robustness: the sign of KL − L1 ({primary:+.4f}: {who}) survives {held_text} checks"
    if failed:
        text += f"; it does not under: {', '.join(failed)}"
    if missing:
        text += f"; no estimate (the frontiers do not overlap) under: {', '.join(missing)}"
    text += "."
    for reference in (c for c in checks if c.role == "reference"):
        if same_sign(reference, primary) is False:
            text += (f" On {reference.name}, the one-seed checks' reference, the sign is already the opposite "
                     f"({reference.diff:+.4f}).")
        elif reference.diff is None:
            text += f" On {reference.name}, the one-seed checks' reference, the frontiers do not overlap."
    return text


def add_robustness(results: dict[str, ArchResult], robustness: dict[str, dict[str, dict]], theta: float, seed: int,
                   l0_ranges) -> None:
    """Each architecture's robustness checks and sentence, into its analyse() result (where it has a primary);
    `robustness`: arch -> study -> the robustness stage's file."""
    for arch, r in results.items():
        if r.estimands[theta] is not None:
            r.robustness = robustness_checks(r, theta, seed, robustness.get(arch, {}), l0_ranges.of(arch))
            r.robustness_sentence = robustness_sentence(arch, r.robustness)


def section(results: dict[str, ArchResult], theta: float, seed: int, factors: dict[str, list[float]]) -> str:
    """The Robustness section's Markdown (figures from save_figures)."""
    listed = "; ".join(f"{STUDY_LABEL[s]} × {', '.join(f'{f:g}' for f in fs)}" for s, fs in factors.items())
    md = ["## Robustness\n",
          "Does the sign of the primary estimand hold when the analysis or the training changes? Per architecture, "
          f"KL − L1 in FVU averaged over the grid: the primary over every seed; the same on seed {seed} alone, on the "
          "test split and on the validation split; under the other interpolation rule; at each other activity "
          "threshold (over the L0 range every seed's frontiers cover at that threshold, not the declared one); and "
          f"retrained on seed {seed} ({listed}): every L1 and KL frontier setting as one stack per factor, everything "
          "else as the train stage has it (the budget multiplies train.epochs, the warm-ups and the decay stretch "
          "with it; the learning rate multiplies each penalty's own rate), read at threshold "
          f"{theta:g} inside the declared range like the primary. The retrained models are evaluated on the "
          "validation split (the protocol makes every check of a choice there, docs/design/verdict-protocol.md), so "
          f"each stands beside seed {seed}'s main frontier read on the validation split, the one-seed checks' "
          "reference; the same seed's test numbers are shown, not counted. One seed has no interval: a one-seed "
          "check whose sign differs where the primary is small says that training choices move the difference by as "
          "much as it is.\n"]
    for arch, r in results.items():
        md.append(f"### {arch}\n")
        if not r.robustness:
            md.append(f"No primary estimand for {arch} (the frontiers do not overlap): nothing to check.\n")
            continue
        md.append(markdown_table(["check", "KL − L1 (estimand)", "sign as the primary?"],
                                 robustness_rows(r.robustness)))
        md.append(r.robustness_sentence + "\n")
        md.append(f"![{arch}: KL − L1 under each check](figures/robustness-{arch}.png)\n")
    return "\n".join(md)


def save_figures(results: dict[str, ArchResult], theta: float, figures: Path) -> None:
    """figures/robustness-<arch>.png: KL − L1 along the grid of each check on the primary threshold's L0 axis."""
    for arch, r in results.items():
        if not r.robustness:
            continue
        curves = {c.label: (np.asarray(c.est.grid), np.array([d.diff for d in c.est.at_grid]))
                  for c in r.robustness if c.drawn and c.est is not None}
        save(robustness_curves(arch, curves, theta), figures / f"robustness-{arch}.png")


def robustness_json(results: dict[str, ArchResult]) -> dict:
    """The robustness checks for summary.json: per architecture, each check's KL − L1 and sign, and the sentence."""
    return {arch: {"sentence": r.robustness_sentence,
                   "checks": [{"check": c.label, "role": c.role, "kl_minus_l1": c.diff,
                               "same_sign": same_sign(c, r.robustness[0].diff), "split": c.split or None}
                              for c in r.robustness]}
            for arch, r in results.items() if r.robustness}
