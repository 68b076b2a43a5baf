"""The report's numbers and sentences, computed from result files: no hand-written claims.

Everything here is a pure function of per-seed metrics and frontier points, so the
tests can check each sentence against the numbers it is generated from.
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
import re
from pathlib import Path

import numpy as np

from . import stats

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
# Compared between L1 and KL with a Welch test, with the noun their sentences use.
KEY_METRICS = {"fvu": "FVU", "mse": "MSE per pixel", "l0": "L0", "dead_fraction": "dead-unit fraction",
               "probe_accuracy": "probe accuracy"}


# Metrics whose interval must respect a bound (stats.summarize): fractions stay in [0, 1], FVU and MSE above 0.
BOUNDED = {"fvu": "positive", "mse": "positive", "fvu_untruncated": "positive", "dead_fraction": "fraction",
           "always_on_fraction": "fraction", "probe_accuracy": "fraction", "saturated_fraction": "fraction",
           "hoyer": "fraction"}


# A fraction of code units shown as counts per seed instead (a conv code has 32 channels: 1 of them is 3.1%, and a
# t interval over three seeds of 0 or 1 channels says less than the counts themselves).
UNIT_COUNTS = {"dead_fraction": "dead_units", "always_on_fraction": "always_on_units"}
UNIT_NOUN = {"linear": ("unit", "units"), "conv": ("channel", "channels")}  # what a code unit is, per architecture


def unit_counts(per_seed: list[dict], key: str, arch: str) -> str:
    """'0, 1, 0 of 32 channels': a unit-count metric (UNIT_COUNTS[key]) on each seed, in seed order."""
    counts = ", ".join(str(m[UNIT_COUNTS[key]]) for m in per_seed)
    return f"{counts} of {per_seed[0]['code_units']} {UNIT_NOUN[arch][1]}"


def dead_unit_check(name: str, arch: str, per_seed: list[dict], limit: float) -> tuple[bool, str]:
    """At most `limit` of the code units dead on every seed, the limit in whole units and at least one: 2% of
    32 channels is 0.64, so it allows one (a fraction below one unit would fail on any dead channel)."""
    units = per_seed[0]["code_units"]
    allowed = max(math.floor(limit * units), 1)
    dead = [m["dead_units"] for m in per_seed]
    singular, plural = UNIT_NOUN[arch]
    rule = f"{limit:.0%} of {units}" + (f", at least one {singular}" if limit * units < 1 else "")
    return (max(dead) <= allowed,
            f"{name}: at most {allowed} dead {singular if allowed == 1 else plural} of {units} on every seed ({rule}; "
            f"dead per seed: {unit_counts(per_seed, 'dead_fraction', arch)})")


def where_in_range(l0: float, l0_range: tuple[float, float]) -> str:
    """Where an L0 lies against a declared range: "below", "inside" (bounds included) or "above"."""
    return "below" if l0 < l0_range[0] else "above" if l0 > l0_range[1] else "inside"


def placement(points: list[dict], threshold: float, l0_range: tuple[float, float]) -> list[dict]:
    """Each setting of one variant's frontier: its mean L0 over seeds at `threshold` and where that lies against the
    declared range: "below", "inside" (bounds included) or "above". Settings in the frontier file's order."""
    by_setting: dict[str, list[float]] = {}
    for point in points:
        by_setting.setdefault(json.dumps(point["setting"], sort_keys=True), []).append(
            point["metrics"][f"l0_at_{threshold:g}"])
    rows = []
    for key, l0s in by_setting.items():
        l0 = float(np.mean(l0s))
        rows.append({"setting": json.loads(key), "l0": l0, "where": where_in_range(l0, l0_range)})
    return rows


def placement_counts(rows: list[dict]) -> dict[str, int]:
    """How many settings lie below, inside and above the range."""
    return {where: sum(r["where"] == where for r in rows) for where in ("below", "inside", "above")}


REFERENCE_TOLERANCE = 0.02  # our training on par with the reference implementation: at most 2% above its FVU


def reference_comparison(ours: list[tuple[float, float]], theirs: list[tuple[float, float]],
                         tolerance: float = REFERENCE_TOLERANCE) -> dict:
    """Each of our (L0, FVU) points against the reference frontier `theirs` read at its L0 (log FVU linear in log
    L0 between neighbouring points, never extrapolated): ours / theirs - 1, the worst, and whether it is within
    `tolerance` at every matched point."""
    rows = []
    theirs = sorted(theirs)
    for l0, fvu in sorted(ours):
        value = float(stats.interpolate_at([p[0] for p in theirs], [p[1] for p in theirs], l0, log_y=True))
        reference = None if math.isnan(value) else value
        rows.append({"l0": l0, "fvu": fvu, "reference_fvu": reference,
                     "relative_difference": None if reference is None else fvu / reference - 1})
    matched = [r["relative_difference"] for r in rows if r["relative_difference"] is not None]
    worst = max(matched) if matched else None
    return {"points": rows, "n_matched": len(matched), "worst_relative_difference": worst,
            "tolerance": tolerance, "passed": worst is not None and worst <= tolerance}


def seed_summaries(per_seed: list[dict]) -> dict[str, stats.Summary]:
    """Mean, std and 95% interval over seeds of every numeric metric present in all seeds (bounded ones on their
    scale)."""
    keys = [k for k in per_seed[0] if all(isinstance(m.get(k), (int, float)) for m in per_seed)]
    summaries = {}
    for k in keys:
        values = [m[k] for m in per_seed]
        resolution = 1 / per_seed[0]["code_size"] if k.endswith("fraction") and "code_size" in per_seed[0] else 1e-4
        summaries[k] = stats.summarize(values, bounds=BOUNDED.get(k, "none"), resolution=resolution)
    return summaries


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


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


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
    return f"{prefix}{a}'s {label} is {size} {direction} than {b}'s ({ci}, {_p_text(d.p)}; {significance} at 5%)."


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


def pareto_front(l0: np.ndarray, fvu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points not beaten by a sparser one: sorted by L0, each with lower FVU than every sparser point.

    Several families of settings (KL's rho at several code scales) or noise can leave points above
    the curve; the frontier is the best FVU reached at each sparsity: KL's envelope over its scales.
    """
    return pareto_points(l0, fvu)[:2]


def pareto_points(l0, fvu, *extra) -> tuple[np.ndarray, ...]:
    """pareto_front, carrying further per-point arrays (e.g. probe accuracy) along with the kept points."""
    l0, fvu = np.asarray(l0, float), np.asarray(fvu, float)
    extra = [np.asarray(e, float) for e in extra]
    keep = (l0 > 0) & np.isfinite(l0) & np.isfinite(fvu)
    order = np.argsort(l0[keep], kind="stable")
    columns = [c[keep][order] for c in (l0, fvu, *extra)]
    kept, best = [], math.inf
    for i, y in enumerate(columns[1]):
        if y < best:
            kept.append(i)
            best = y
    return tuple(c[kept] for c in columns)


def seed_frontiers(points: list[dict], threshold: float, extra: str | None = None) -> dict[int, tuple]:
    """Each seed's frontier of one variant at one activity threshold: {seed: (L0, FVU[, extra])} on the Pareto front.

    points: a frontier file's points (setting, seed, metrics); L0 and FVU of the truncated code at `threshold`.
    """
    by_seed: dict[int, list[dict]] = {}
    for point in points:
        by_seed.setdefault(point["seed"], []).append(point["metrics"])
    key = f"{threshold:g}"
    fronts = {}
    for seed, metrics in sorted(by_seed.items()):
        columns = [[m[f"l0_at_{key}"] for m in metrics], [m[f"fvu_at_{key}"] for m in metrics]]
        if extra:
            columns.append([m[extra] for m in metrics])
        fronts[seed] = pareto_points(*columns)
    return fronts


# The pre-declared primary estimand: one per architecture, stated in the report's Verdict section and the README.
PRIMARY_GRID_POINTS = 9  # L0 values, evenly spaced in log L0 strictly inside the covered range
PRIMARY_LOG_FVU = True  # each frontier read by interpolating log FVU linearly in log L0 (False: FVU, the sensitivity)
INTERPOLATION = {True: "log FVU interpolated linearly in log L0", False: "FVU interpolated linearly in log L0"}
PRIMARY_ESTIMAND = (
    "KL − L1 in test FVU of the truncated code at the activity threshold `evaluate.active_threshold`, averaged "
    f"over {PRIMARY_GRID_POINTS} L0 values evenly spaced in log L0 inside the declared range `sweep.l0_range` "
    "(clipped to the range every seed's L1 and KL Pareto frontiers cover, if narrower), each frontier read there "
    f"with {INTERPOLATION[PRIMARY_LOG_FVU]} between its points (never extrapolated); paired over seeds (each "
    "seed's L1 and KL start from the same weights and see the same batches: the paired t interval and test of the "
    "per-seed averages); Holm's correction across the architectures. Negative favours KL."
)


def primary_estimand(l1: dict[int, tuple], kl: dict[int, tuple], n_grid: int = PRIMARY_GRID_POINTS,
                     log_fvu: bool = PRIMARY_LOG_FVU, l0_range: tuple[float, float] | None = None) -> dict | None:
    """KL − L1 in FVU at matched L0, averaged over the L0 range every seed's L1 and KL frontier covers.

    The pre-declared primary estimand of an architecture (PRIMARY_ESTIMAND). Per seed s: read both of that
    seed's frontiers at `n_grid` L0 values evenly spaced in log10 inside the covered range (stats.common_range,
    stats.common_grid), narrowed to the declared `l0_range` where given (at the primary threshold), log FVU linear in log L0 between frontier points (log_fvu=False: FVU linear in log L0,
    which overstates FVU between the points of a convex frontier), and average the differences: D_s. Then the
    mean of D_s over seeds, with the paired t interval and test (the same seed trains L1 and KL from the same
    weights on the same batches). Also each grid point's paired difference over seeds (`at_grid`: the curve the
    verdict describes). None when the frontiers do not overlap (or have < 2 points).
    """
    seeds = sorted(set(l1) & set(kl))
    fronts = [l1[s] for s in seeds] + [kl[s] for s in seeds]
    if not seeds or any(len(f[0]) < 2 for f in fronts):
        return None
    ranges = [(f[0].min(), f[0].max()) for f in fronts] + ([tuple(l0_range)] if l0_range is not None else [])
    covered, grid = stats.common_range(ranges), stats.common_grid(ranges, n=n_grid)
    if len(grid) == 0:
        return None
    fvu_l1 = matched_values({s: l1[s] for s in seeds}, grid, log_y=log_fvu)
    fvu_kl = matched_values({s: kl[s] for s in seeds}, grid, log_y=log_fvu)
    per_seed = (fvu_kl - fvu_l1).mean(axis=1)
    return {
        "seeds": seeds, "covered": covered, "grid": grid, "log_fvu": log_fvu,
        "fvu_l1": fvu_l1, "fvu_kl": fvu_kl, "per_seed": per_seed,
        "difference": stats.paired(fvu_kl.mean(axis=1), fvu_l1.mean(axis=1)),
        "at_grid": [stats.paired(fvu_kl[:, i], fvu_l1[:, i]) for i in range(len(grid))],
    }


def points_estimand(l1_points: list[dict], kl_points: list[dict], threshold: float,
                    l0_range: tuple[float, float] | None = None) -> dict | None:
    """primary_estimand of frontier-file points (setting, seed, metrics) at `threshold`: each seed's L1 and KL
    frontiers (seed_frontiers), e.g. of one seed's points or of one training variation's (stages/robustness.py)."""
    return primary_estimand(seed_frontiers(l1_points, threshold), seed_frontiers(kl_points, threshold),
                            l0_range=l0_range)


def matched_values(fronts: dict[int, tuple], grid: np.ndarray, column: int = 1, log_y: bool = False) -> np.ndarray:
    """(seeds, grid) values of one column of each seed's frontier (1: FVU, 2: the extra one), read at `grid` L0
    (log_y: log values interpolated, as the primary estimand reads FVU)."""
    return np.array([stats.interpolate_at(f[0], f[column], grid, log_y=log_y) for _, f in sorted(fronts.items())])


def significant(d: stats.Difference) -> bool:
    """The paired 95% interval excludes zero (unadjusted): p < 0.05."""
    return math.isfinite(d.p) and d.p < 0.05


def sign_runs(differences: list[float]) -> list[tuple[int, int, int]]:
    """The maximal runs of consecutive grid points whose difference has one sign: (sign, first, last index)."""
    runs: list[tuple[int, int, int]] = []
    for i, d in enumerate(differences):
        sign = int(np.sign(d))
        if runs and runs[-1][0] == sign:
            runs[-1] = (sign, runs[-1][1], i)
        else:
            runs.append((sign, i, i))
    return runs


def zero_crossing(x0: float, d0: float, x1: float, d1: float) -> float:
    """The L0 where the line through (log10 x0, d0) and (log10 x1, d1) crosses zero: where the sign changes
    between two grid points (d0 and d1 of opposite signs), on the grid's log scale."""
    fraction = d0 / (d0 - d1)
    return 10 ** (math.log10(x0) + fraction * (math.log10(x1) - math.log10(x0)))


BETTER_BY_SIGN = {-1: "KL", 1: "L1"}  # the sign of KL − L1 in FVU -> the penalty that reconstructs better


SIGNIFICANCE = "significant: unadjusted, the point's paired 95% interval excludes zero"


def l0_text(l0: float) -> str:
    """An L0 value to three significant digits, without an exponent: 40.4, 120, 1568."""
    return f"{l0:.3g}" if l0 < 1000 else f"{l0:.0f}"


def _stretch(est: dict, first: int, last: int) -> str:
    """'L0 ≈ 40.4–46 (KL − L1 -0.0151 to -0.0176 FVU, significant at 2 of 2)' for grid points first..last."""
    grid, points = est["grid"], est["at_grid"][first:last + 1]
    span = f"L0 ≈ {l0_text(grid[first])}" + ("" if first == last else f"–{l0_text(grid[last])}")
    diffs = [d.diff for d in points]
    smallest, largest = f"{min(diffs, key=abs):+.4f}", f"{max(diffs, key=abs):+.4f}"
    size = smallest if smallest == largest else f"{smallest} to {largest}"
    return f"{span} (KL − L1 {size} FVU, significant at {_n_significant(est, first, last)} of {len(points)})"


def _n_significant(est: dict, first: int, last: int) -> int:
    """How many grid points first..last have a paired 95% interval excluding zero."""
    return sum(map(significant, est["at_grid"][first:last + 1]))


def _who_is_better(est: dict, sign: int, first: int, last: int) -> str:
    """'KL reconstructs better', or, where none of the stretch's points is significant, that it is only nominal."""
    if _n_significant(est, first, last):
        return f"{BETTER_BY_SIGN[sign]} reconstructs better"
    n = last - first + 1
    where = "not significant at its one grid point" if n == 1 else f"significant at none of its {n} grid points"
    return f"{BETTER_BY_SIGN[sign]} is nominally better ({where})"


def curve_sentence(est: dict, threshold: float) -> str:
    """What KL − L1 does along the grid: one sign everywhere (who is better over the whole covered range), one
    reversal (who is better below and above the L0 where it changes sign), or several; with how many of each
    stretch's points have a paired 95% interval excluding zero (unadjusted)."""
    lo, hi = est["covered"]
    where = (f"the covered range L0 ≈ {l0_text(lo)}–{l0_text(hi)} (the L0 every seed's L1 and KL frontiers reach, "
             f"threshold {threshold:g})")
    runs = sign_runs([d.diff for d in est["at_grid"]])
    if len(runs) == 1:
        sign, first, last = runs[0]
        who = f"{BETTER_BY_SIGN[sign]} reconstructs better" if sign else "KL and L1 reconstruct equally well"
        return (f"{who} at all {len(est['grid'])} grid points of {where}, {_stretch(est, first, last)}; "
                f"{SIGNIFICANCE}.")
    stretches = "; ".join(f"{BETTER_BY_SIGN[sign] + ' better' if sign else 'equal'} at {_stretch(est, first, last)}"
                          for sign, first, last in runs)
    if len(runs) == 2 and 0 not in (runs[0][0], runs[1][0]):
        grid, d = est["grid"], est["at_grid"]
        last = runs[0][2]
        x = zero_crossing(grid[last], d[last].diff, grid[last + 1], d[last + 1].diff)
        below, above = (_who_is_better(est, *run) for run in runs)
        head = f"the sign of KL − L1 reverses inside {where}: {below} below L0 ≈ {l0_text(x)}, {above} above"
    else:
        head = f"the sign of KL − L1 changes {len(runs) - 1} times inside {where}"
    return f"{head} ({stretches}; {SIGNIFICANCE})."


def average_sentence(est: dict, holm_p: float) -> str:
    """The primary estimand, the mean of KL − L1 over the grid, paired over seeds, with its Holm-adjusted p; when
    the curve changes sign, a reminder that the average weighs the stretches rather than naming a winner."""
    d, n = est["difference"], len(est["seeds"])
    if math.isfinite(holm_p):
        test = f"Holm-adjusted p = {holm_p:.3g}, {'significant' if holm_p < 0.05 else 'not significant'} at 5%"
    else:
        test = "too few seeds for a test"
    text = (f"Averaged over the grid (the primary estimand): KL − L1 = {d.diff:+.4f} FVU (95% CI "
            f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}], paired over {n} seeds; {test}).")
    if len(sign_runs([g.diff for g in est["at_grid"]])) > 1:
        text += (" The curve changes sign, so this average weighs the stretches by their share of the grid: it "
                 "names no winner for the whole range.")
    return text


def verdict(arch: str, by_threshold: dict[float, dict | None], primary_threshold: float, holm_p: float) -> str:
    """The architecture's L1-vs-KL verdict: the curve of KL − L1 along the grid at the primary threshold (where
    it favours which penalty), the primary estimand (its average), and at which other thresholds the average's
    sign (and unadjusted significance) holds."""
    primary = by_threshold.get(primary_threshold)
    if primary is None:
        return (f"{arch}: the L1 and KL frontiers do not overlap in L0 on every seed, so they cannot be "
                "compared at matched sparsity; widen the sweep in params.yaml.")
    d = primary["difference"]
    text = f"{arch}: {curve_sentence(primary, primary_threshold)} {average_sentence(primary, holm_p)}"
    same, other = [], []
    for t, est in sorted(by_threshold.items()):
        if t == primary_threshold:
            continue
        if est is None:
            other.append(f"{t:g} (no overlap)")
        elif (est["difference"].diff < 0) == (d.diff < 0):
            same.append(f"{t:g}" + ("" if est["difference"].p < 0.05 else " (not significant)"))
        else:
            other.append(f"{t:g} (reversed)")
    if same and not other:
        text += f" The average's sign holds at every other threshold: {', '.join(same)}."
    elif same:
        text += f" The average's sign holds at {', '.join(same)}; not at {', '.join(other)}."
    elif other:
        text += f" It does not hold at the other thresholds: {', '.join(other)}."
    return text


def sensitivity_sentence(arch: str, primary: dict, alternative: dict | None) -> str:
    """The primary estimand under the other interpolation rule, and whether its sign agrees."""
    rule = INTERPOLATION[primary["log_fvu"]]
    if alternative is None:
        return f"{arch}: no sensitivity estimate (the frontiers do not overlap)."
    d, p = alternative["difference"], primary["difference"]
    agrees = "the same sign as" if np.sign(d.diff) == np.sign(p.diff) else "the opposite sign to"
    return (f"{arch}, sensitivity: with {INTERPOLATION[alternative['log_fvu']]} (instead of {rule}), the average "
            f"KL − L1 is {d.diff:+.4f} FVU (95% CI [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"
            f"{', paired ' + _p_text(d.p) if math.isfinite(d.p) else ''}): {agrees} the primary estimand "
            f"({p.diff:+.4f}).")


def probes_at_grid_edge(chosen: dict[str, float], grid: list[float]) -> list[str]:
    """The probes (name -> chosen C) whose C is the grid's smallest or largest value: the validation accuracy
    may still rise beyond it, so the grid may not hold the best C. (A grid of one value has no choice to judge.)"""
    if len(grid) < 2:
        return []
    return [name for name, C in chosen.items() if C in (min(grid), max(grid))]


def markdown_to_html(markdown: str, base_dir: Path, title: str) -> str:
    """A self-contained HTML page: the Markdown rendered, every local image embedded as a data URI."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)

    def embed(match: re.Match) -> str:
        path = base_dir / match.group(1)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return f'src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"'

    body = re.sub(r'src="(?!data:|https?:)([^"]+)"', embed, body)
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 7px}"
             "th{background:#f3f3f3}img{max-width:100%}code,pre{background:#f6f6f6}pre{padding:0.6em;overflow-x:auto}"
             "blockquote{border-left:4px solid #d55;margin-left:0;padding-left:1em;color:#333}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{style}</style></head>\n<body>\n{body}</body></html>\n")
