"""Every number of the report's Verdict, recomputed from the committed result files, independently.

This module is the second implementation that `make verify` checks the report against. It shares no code with
the report (no sae_mnist import: plain numpy and scipy), so a slip in the report's statistics shows up as a
disagreement here instead of being repeated. It follows the estimand as declared in the README and in
`estimand.PRIMARY_ESTIMAND`, read top to bottom:

1. Each seed's frontier of a penalty at an activity threshold: its points' (L0, FVU) at that threshold, sorted by
   L0, keeping each point whose FVU is below that of every sparser point (the Pareto front).
2. The covered range: the L0 interval every seed's L1 and KL frontier reaches, narrowed to the declared
   `sweep.l0_range` at the primary threshold. The grid: 9 L0 values evenly spaced in log10 L0 strictly inside it.
3. Each frontier read at the grid (never extrapolated): log10 FVU linear in log10 L0 (the primary rule), or FVU
   linear in log10 L0 (the sensitivity).
4. Per seed, the mean over the grid of KL − L1; then the paired t interval and test over seeds, for the average
   and for each grid point (all differences equal: the interval is the value itself, p = 0, or 1 for zero).
5. Holm's step-down adjustment of the architectures' primary p-values.

Plus what the report derives from the same files: the robustness checks' KL − L1 (one seed's points, the
robustness stages' variations) and each variant's default-setting mean and standard deviation over seeds.

`recompute(root)` returns a flat {name: value} dictionary whose names are the paths of the same numbers in
`reports/summary.json` and `metrics/headline.json` (e.g. `summary.primary.conv.at_grid[3].ci_low`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

GRID_POINTS = 9
COMPARED = ("l1", "kl")
ARCHITECTURES = ("linear", "conv")
STUDY_NAMES = {"budget": "budget", "lr": "learning rate"}  # how the report's robustness labels name each study


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


# ----------------------------------------------------------------------------------------------- 1. frontiers


def frontier(points: list[dict], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(L0, FVU) of one seed's Pareto front at `threshold`, sorted by L0."""
    key = f"{threshold:g}"
    pairs = [(p["metrics"][f"l0_at_{key}"], p["metrics"][f"fvu_at_{key}"]) for p in points]
    pairs = [(x, y) for x, y in pairs if x > 0 and math.isfinite(x) and math.isfinite(y)]
    pairs.sort(key=lambda pair: pair[0])  # stable: equal L0 keep the file's order
    kept, best = [], math.inf
    for x, y in pairs:
        if y < best:
            kept.append((x, y))
            best = y
    return np.array([x for x, _ in kept]), np.array([y for _, y in kept])


def frontiers_by_seed(points: list[dict], threshold: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    seeds = sorted({p["seed"] for p in points})
    return {s: frontier([p for p in points if p["seed"] == s], threshold) for s in seeds}


# ------------------------------------------------------------------------------------------ 2. range and grid


def covered_range(fronts: list[tuple[np.ndarray, np.ndarray]], declared) -> tuple[float, float] | None:
    los = [f[0].min() for f in fronts] + ([declared[0]] if declared else [])
    his = [f[0].max() for f in fronts] + ([declared[1]] if declared else [])
    lo, hi = float(max(los)), float(min(his))
    return (lo, hi) if lo < hi else None


def log_grid(lo: float, hi: float, n: int = GRID_POINTS) -> np.ndarray:
    steps = np.arange(1, n + 1) / (n + 1)
    return 10 ** (math.log10(lo) + steps * (math.log10(hi) - math.log10(lo)))


# ------------------------------------------------------------------------------------------- 3. reading a front


def read_at(l0: np.ndarray, fvu: np.ndarray, at: np.ndarray, log_fvu: bool) -> np.ndarray:
    """FVU at the L0 values `at`: linear in log10 L0 (log10 FVU with log_fvu); equal L0 values averaged first."""
    y = np.log10(fvu) if log_fvu else fvu
    xs = sorted(set(l0.tolist()))
    ys = [float(np.mean(y[l0 == x])) for x in xs]
    if any(a < xs[0] or a > xs[-1] for a in at):
        raise ValueError(f"a grid point lies outside the frontier's L0 range [{xs[0]}, {xs[-1]}]")
    read = np.interp(np.log10(at), np.log10(xs), ys)
    return 10**read if log_fvu else read


# ------------------------------------------------------------------------------------------ 4. paired t test


def paired(a: np.ndarray, b: np.ndarray) -> dict:
    """Mean of a − b over seeds, its 95% t interval, t, df and two-sided p."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    mean = float(d[0]) if np.all(d == d[0]) else float(np.sum(d) / n)
    if n < 2:
        return {"diff": mean, "ci_low": math.nan, "ci_high": math.nan, "t": math.nan, "df": math.nan, "p": math.nan,
                "confidence": 0.95}
    if np.all(d == d[0]):
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        return {"diff": mean, "ci_low": mean, "ci_high": mean, "t": t, "df": n - 1, "p": 1.0 if mean == 0 else 0.0,
                "confidence": 0.95}
    se = math.sqrt(float(np.sum((d - d.mean()) ** 2)) / (n - 1) / n)
    t = mean / se
    half = float(stats.t.ppf(0.975, n - 1)) * se
    return {"diff": mean, "ci_low": mean - half, "ci_high": mean + half, "t": t, "df": n - 1,
            "p": float(2 * stats.t.sf(abs(t), n - 1)), "confidence": 0.95}


def estimand(l1_points: list[dict], kl_points: list[dict], threshold: float, declared=None,
             log_fvu: bool = True) -> dict | None:
    """KL − L1 averaged over the grid, paired over seeds, and at each grid point; None without overlap."""
    l1, kl = frontiers_by_seed(l1_points, threshold), frontiers_by_seed(kl_points, threshold)
    seeds = sorted(set(l1) & set(kl))
    fronts = [l1[s] for s in seeds] + [kl[s] for s in seeds]
    if not seeds or any(len(f[0]) < 2 for f in fronts):
        return None
    covered = covered_range(fronts, declared)
    if covered is None:
        return None
    grid = log_grid(*covered)
    fvu_l1 = np.array([read_at(*l1[s], grid, log_fvu) for s in seeds])
    fvu_kl = np.array([read_at(*kl[s], grid, log_fvu) for s in seeds])
    return {
        "l0_range": list(covered), "grid": grid.tolist(), "seeds": seeds,
        "per_seed": (fvu_kl - fvu_l1).mean(axis=1).tolist(),
        **paired(fvu_kl.mean(axis=1), fvu_l1.mean(axis=1)),
        "at_grid": [{"l0": float(grid[i]), "fvu_l1": float(fvu_l1[:, i].mean()), "fvu_kl": float(fvu_kl[:, i].mean()),
                     **paired(fvu_kl[:, i], fvu_l1[:, i])} for i in range(len(grid))],
    }


# ------------------------------------------------------------------------------------------------- 5. Holm


def holm(p_values: list[float]) -> list[float]:
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [math.nan] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# ---------------------------------------------------------------------------------- the report's other numbers


def robustness_checks(arch: str, primary: dict, by_threshold: dict, sensitivity: dict, points: dict,
                      studies: list[dict], theta: float, seed: int, declared) -> dict[str, float | None]:
    """Each robustness check's KL − L1, by the name the report gives it (the start of its label)."""
    one_seed = {p: [pt for pt in points[p] if pt["seed"] == seed] for p in COMPARED}
    own = estimand(one_seed["l1"], one_seed["kl"], theta, declared)
    checks = {"the primary": primary["diff"], f"the primary on seed {seed} alone": own and own["diff"],
              "the other interpolation": sensitivity["diff"]}
    for t, est in by_threshold.items():
        if float(t) != theta:
            checks[f"threshold {t}"] = est and est["diff"]
    for study in studies:
        for v in study["variations"]:
            pts = {p: [pt for pt in v["points"] if pt["penalty"] == p] for p in COMPARED}
            est = estimand(pts["l1"], pts["kl"], theta, declared)
            checks[f"{STUDY_NAMES[study['study']]} ×{v['factor']:g}"] = est and est["diff"]
    return checks


def flatten(value, name: str, out: dict) -> dict:
    """{'a.b[0].c': number} for every number (and bool) in a nested dict/list."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{name}.{k}", out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            flatten(v, f"{name}[{i}]", out)
    elif isinstance(value, (int, float)) or value is None:
        out[name] = value
    return out


def recompute(root: Path) -> dict[str, float | bool | None]:
    """Every recomputed number, named by its path in summary.json ('summary.…') or headline.json ('headline.…')."""
    root = Path(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    theta = float(params["evaluate"]["active_threshold"])
    thresholds = [float(t) for t in params["evaluate"]["thresholds"]]
    summary: dict = {"primary": {}, "by_threshold": {}, "sensitivity": {}, "variants": {}, "robustness": {}}
    headline: dict = {"primary": {}}
    points = {}
    for arch in ARCHITECTURES:
        points[arch] = {p: read_json(root / "frontier" / f"{arch}-{p}.json")["points"] for p in COMPARED}
        declared = params["sweep"]["l0_range"][arch]
        summary["by_threshold"][arch] = {
            f"{t:g}": estimand(points[arch]["l1"], points[arch]["kl"], t, declared if t == theta else None)
            for t in thresholds}
        summary["primary"][arch] = {"threshold": theta, **summary["by_threshold"][arch][f"{theta:g}"]}
        summary["sensitivity"][arch] = {"threshold": theta, **estimand(points[arch]["l1"], points[arch]["kl"], theta,
                                                                      declared, log_fvu=False)}
    archs = list(summary["primary"])
    for arch, p in zip(archs, holm([summary["primary"][a]["p"] for a in archs])):
        summary["primary"][arch]["holm_p"] = p
        est = summary["primary"][arch]
        headline["primary"][arch] = {"kl_minus_l1_fvu": round(est["diff"], 6), "ci_low": round(est["ci_low"], 6),
                                     "ci_high": round(est["ci_high"], 6), "holm_p": round(p, 6)}
    seed = params["robustness"]["seed"]
    for arch in archs:
        studies = [read_json(f) for f in sorted((root / "robustness").glob(f"{arch}-*.json"))]
        checks = robustness_checks(arch, summary["primary"][arch], summary["by_threshold"][arch],
                                   summary["sensitivity"][arch], points[arch], studies, theta, seed,
                                   params["sweep"]["l0_range"][arch])
        sign = np.sign(checks["the primary"])
        summary["robustness"][arch] = {name: {"kl_minus_l1": diff, "same_sign": None if diff is None
                                              else bool(np.sign(diff) == sign)} for name, diff in checks.items()}
    for path in sorted((root / "frontier").glob("*.json")):
        data = read_json(path)
        defaults = [p["metrics"] for p in data["points"] if p["default"]]
        numeric = [k for k in defaults[0] if all(isinstance(m.get(k), (int, float)) for m in defaults)]
        summary["variants"][data["variant"]] = {
            k: {"n": len(defaults), "mean": float(np.mean([m[k] for m in defaults])),
                "std": float(np.std([m[k] for m in defaults], ddof=1)) if len(defaults) > 1 else math.nan}
            for k in numeric}
        headline[data["variant"]] = {short: round(summary["variants"][data["variant"]][k]["mean"], 6)
                                     for k, short in (("fvu", "fvu"), ("l0", "l0"), ("dead_fraction", "dead"),
                                                      ("probe_accuracy", "probe"))}
    return flatten(summary, "summary", {}) | flatten(headline, "headline", {})
