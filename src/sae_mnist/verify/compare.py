"""The committed numbers beside the recomputed ones: summary.json and headline.json against recompute.py, and a
retrained point's test metrics against its frontier file.

Tolerances:
- recomputed statistics: relative 1e-9 (absolute 1e-12 near zero). Both sides compute the same float operations
  from the same inputs, so they agree to rounding (today: bitwise on the Verdict); 1e-9 leaves room for another
  numpy or scipy.
- retrained points: RETRAIN_TOLERANCE, measured (docs/verify.md, benchmarks/verify_tolerance.json). On the CPU
  and thread count that made the results, retraining is expected to be bitwise, and each number says whether it is.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..io import read_json
from .recompute import flatten, recompute

RELATIVE = 1e-9
ABSOLUTE = 1e-12
# How far a retrained point's test FVU and L0 (each threshold) may lie from the committed ones, relative, by how its
# code is made. Measured (benchmarks/verify_tolerance.json, docs/verify.md): twice the largest difference that float
# rounding alone made (another CPU, one thread instead of two, AVX2 instead of AVX-512 kernels, inside a stack
# instead of alone), rounded up. A sigmoid code (KL) moved by at most 1.2e-5; a ReLU code (L1, unpenalised, TopK)
# by up to 1.2e-2, as units near their threshold switch on or off and training carries the change on.
RETRAIN_TOLERANCE = {"kl": {"fvu": 1e-5, "l0": 3e-5}, "relu": {"fvu": 3e-2, "l0": 3e-2}}


def code_kind(penalty: str) -> str:
    """'kl' for a sigmoid code, 'relu' for the rest (L1, unpenalised, TopK): the groups RETRAIN_TOLERANCE has."""
    return "kl" if penalty == "kl" else "relu"


def retrain_tolerance(penalty: str) -> dict[str, float]:
    return RETRAIN_TOLERANCE[code_kind(penalty)]


THRESHOLDS_KEY = re.compile(r"^(fvu|l0)_at_(.+)$")


def close(found, expected) -> bool:
    """Equal, for numbers within RELATIVE (nan equals nan, inf equals inf of its sign); booleans and None exactly."""
    if isinstance(found, bool) or isinstance(expected, bool) or found is None or expected is None:
        return found == expected
    if math.isnan(found) or math.isnan(expected):
        return math.isnan(found) and math.isnan(expected)
    return math.isclose(found, expected, rel_tol=RELATIVE, abs_tol=ABSOLUTE)


def check_label(label: str) -> str:
    """A robustness check's name, the start of its label: 'budget ×0.5 (20 epochs; seed 0)' -> 'budget ×0.5'."""
    return re.match(r"(.*?)(?: \(|:|$)", label).group(1)


def committed_numbers(root: Path) -> dict:
    """Every number of summary.json and headline.json, by the names recompute() gives them."""
    root = Path(root)
    summary = read_json(root / "reports" / "summary.json")
    numbers = flatten({k: v for k, v in summary.items() if k != "robustness"}, "summary", {})
    for arch, robustness in summary.get("robustness", {}).items():
        for check in robustness["checks"]:
            name = f"summary.robustness.{arch}.{check_label(check['check'])}"
            numbers[f"{name}.kl_minus_l1"] = check["kl_minus_l1"]
            numbers[f"{name}.same_sign"] = check["same_sign"]
    return numbers | flatten(read_json(root / "metrics" / "headline.json"), "headline", {})


def file_of(name: str) -> str:
    return "metrics/headline.json" if name.startswith("headline.") else "reports/summary.json"


def compare_recomputed(root: Path) -> tuple[list[dict], list[str]]:
    """(one row per recomputed number: name, file, committed, recomputed, ok; the committed numbers that are not
    recomputed, by name). A number recomputed but missing from the files is a row that is not ok."""
    mine, theirs = recompute(root), committed_numbers(root)
    rows = [{"name": name, "file": file_of(name), "committed": theirs.get(name, "missing"), "recomputed": value,
             "ok": name in theirs and close(value, theirs[name])} for name, value in mine.items()]
    return rows, sorted(set(theirs) - set(mine))


def group_of(name: str) -> str:
    """'summary.by_threshold.conv.0.2.at_grid[3].p' -> 'by_threshold conv 0.2': the table's rows."""
    parts = re.sub(r"\[\d+\]", "", name).split(".")
    if parts[0] == "headline":
        return "headline.json"
    section, rest = parts[1], parts[2:]
    if section == "by_threshold":
        return f"by_threshold {rest[0]} {rest[1]}.{rest[2]}" if rest[2].isdigit() else f"by_threshold {rest[0]}"
    if section in ("primary", "sensitivity", "robustness"):
        return f"{section} {rest[0]}"
    return section


def skipped_kind(name: str) -> str:
    """What a committed number that is not recomputed is, in words."""
    if name.startswith("summary.checks"):
        return "the report's ✓/✗ checks"
    if name.startswith("summary.labelled"):
        return "every threshold's labelled curve (its grid points are recomputed under by_threshold)"
    if name.startswith(("summary.learning_rates", "summary.equivalence_margin")):
        return "the learning rates and the margin (lr_select/*.json, params.yaml)"
    if name.endswith(("ci_low", "ci_high")):
        return "the variants' intervals (log or logit scale)"
    if name.endswith("confidence"):
        return "the variants' confidence level"
    return name.split(".")[1]


def compare_point(committed: dict, retrained: dict, tolerance: dict[str, float]) -> list[dict]:
    """One row per test FVU and L0 at each activity threshold: both values, the relative difference, bitwise
    equality, and whether it is within `tolerance`."""
    rows = []
    for key, value in committed.items():
        match = THRESHOLDS_KEY.match(key)
        if not match:
            continue
        metric, threshold = match.groups()
        found = retrained.get(key, math.nan)
        relative = abs(found - value) / abs(value) if value else abs(found - value)
        rows.append({"metric": metric, "threshold": threshold, "committed": value, "retrained": found,
                     "relative_difference": relative, "bitwise": found == value,
                     "ok": relative <= tolerance[metric]})
    return rows
