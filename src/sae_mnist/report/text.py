"""The report's words and number formats: metric labels, "mean [lo, hi]", p-values, tables, comparison sentences."""

from __future__ import annotations

import math

from .. import stats

# metric key -> (label, format, which direction is better: "low", "high" or "")
METRICS = {
    "fvu": ("FVU", ".4f", "low"),
    "mse": ("MSE/pixel", ".5f", "low"),
    "psnr_db": ("PSNR dB", ".2f", "high"),
    "l0": ("L0", ".1f", "low"),
    "code_size": ("code size", ".0f", ""),
    "mean_activation": ("mean act.", ".4f", ""),
    "dead_fraction": ("dead", ".3f", "low"),
    "always_on_fraction": ("always on", ".3f", ""),
    "hoyer": ("Hoyer", ".3f", "high"),
    "probe_accuracy": ("probe acc.", ".4f", "high"),
    "rho_hat_abs_error": ("mean abs(ρ̂ − ρ)", ".4f", "low"),
    "rho_hat_relative_error": ("mean abs(ρ̂ − ρ) / ρ", ".3f", "low"),
    "saturated_fraction": ("saturated", ".1e", "low"),
    "fvu_untruncated": ("FVU untruncated", ".4f", "low"),
    "probe_converged": ("probe converged", ".0f", ""),
    "n_params": ("params", ".0f", ""),
}
# Compared between L1 and KL, paired by seed, with the noun their sentences use.
KEY_METRICS = {"fvu": "FVU", "mse": "MSE per pixel", "l0": "L0", "dead_fraction": "dead-unit fraction",
               "probe_accuracy": "probe accuracy"}
PENALTY_LABEL = {"none": "none", "l1": "L1", "kl": "KL", "topk": "TopK"}

# A fraction of code units shown as counts per seed instead (a conv code has 32 channels: 1 of them is 3.1%, and a
# t interval over three seeds of 0 or 1 channels says less than the counts themselves).
UNIT_COUNTS = {"dead_fraction": "dead_units", "always_on_fraction": "always_on_units"}
UNIT_NOUN = {"linear": ("unit", "units"), "conv": ("channel", "channels")}  # what a code unit is, per architecture


def unit_counts(per_seed: list[dict], key: str, arch: str) -> str:
    """'0, 1, 0 of 32 channels': a unit-count metric (UNIT_COUNTS[key]) on each seed, in seed order."""
    counts = ", ".join(str(m[UNIT_COUNTS[key]]) for m in per_seed)
    return f"{counts} of {per_seed[0]['code_units']} {UNIT_NOUN[arch][1]}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def mean_ci(s: stats.Summary, fmt: str) -> str:
    """'0.1234 [0.1100, 0.1400]' (the mean and its 95% interval, not always symmetric), or the bare mean for one seed."""
    if s.n < 2 or not math.isfinite(s.ci_high):
        return format(s.mean, fmt)
    return f"{format(s.mean, fmt)} [{format(s.ci_low, fmt)}, {format(s.ci_high, fmt)}]"


def full_summary(s: stats.Summary, fmt: str) -> str:
    """'mean; sd; [lo, hi]' for the appendix table."""
    if s.n < 2:
        return f"{format(s.mean, fmt)} (1 seed)"
    return f"{format(s.mean, fmt)}; sd {format(s.std, fmt)}; [{format(s.ci_low, fmt)}, {format(s.ci_high, fmt)}]"


def p_value(p: float) -> str:
    """'< 0.001', '0.034', or '–' when there is no test."""
    if not math.isfinite(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def l0_text(l0: float) -> str:
    """An L0 value to three significant digits, without an exponent: 40.4, 120, 1568."""
    return f"{l0:.3g}" if l0 < 1000 else f"{l0:.0f}"


def check_mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def difference_sentence(label: str, d: stats.Difference, fmt: str, a: str = "KL", b: str = "L1",
                        context: str = "") -> str:
    """One generated sentence for d = a − b, e.g. "KL's FVU is 0.0120 lower than L1's (95% CI ...)"."""
    prefix = f"{context}, " if context else ""
    if d.diff == 0:
        return f"{prefix}{a}'s {label} equals {b}'s ({format(0.0, fmt)})."
    direction = "higher" if d.diff > 0 else "lower"
    size = format(abs(d.diff), fmt)
    if not math.isfinite(d.p):
        return f"{prefix}{a}'s {label} is {size} {direction} than {b}'s (too few seeds for an interval)."
    significance = "significant" if d.p < 0.05 else "not significant"
    ci = f"{d.confidence:.0%} CI of {a} − {b} [{format(d.ci_low, fmt)}, {format(d.ci_high, fmt)}]"
    return f"{prefix}{a}'s {label} is {size} {direction} than {b}'s ({ci}, {p_text(d.p)}; {significance} at 5%)."


def compare_seeds(l1_seeds: list[dict], kl_seeds: list[dict], metrics=KEY_METRICS) -> list[dict]:
    """Paired comparison KL − L1 over seeds (matched by seed) for each metric both variants have."""
    rows = []
    l1_by_seed, kl_by_seed = {m["seed"]: m["metrics"] for m in l1_seeds}, {m["seed"]: m["metrics"] for m in kl_seeds}
    seeds = sorted(set(l1_by_seed) & set(kl_by_seed))
    for key in metrics:
        if not all(key in l1_by_seed[s] and key in kl_by_seed[s] for s in seeds):
            continue
        label, fmt, better = METRICS[key]
        d = stats.paired([kl_by_seed[s][key] for s in seeds], [l1_by_seed[s][key] for s in seeds])
        rows.append({"metric": key, "label": label, "fmt": fmt, "better": better, "difference": d,
                     "sentence": difference_sentence(metrics[key], d, fmt)})
    return rows
