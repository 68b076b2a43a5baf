"""The report's numbers and sentences, computed from result files: no hand-written claims.

Everything here is a pure function of per-seed metrics and frontier points, so the
tests can check each sentence against the numbers it is generated from.
"""

from __future__ import annotations

import base64
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
    "dense_fraction": ("dense", ".3f", "low"),
    "hoyer": ("Hoyer", ".3f", "high"),
    "probe_accuracy": ("probe acc.", ".4f", "high"),
    "rho_hat_abs_error": ("mean abs(ρ̂ − ρ)", ".4f", "low"),
    "train_wall_time_s": ("train s", ".1f", "low"),
    "train_samples_per_s": ("samples/s", ".0f", "high"),
    "n_params": ("params", ".0f", ""),
}
# Compared between L1 and KL with a Welch test, with the noun their sentences use.
KEY_METRICS = {"fvu": "FVU", "mse": "MSE per pixel", "l0": "L0", "dead_fraction": "dead-unit fraction",
               "probe_accuracy": "probe accuracy"}


def seed_summaries(per_seed: list[dict]) -> dict[str, stats.Summary]:
    """Mean, std and 95% t interval over seeds of every numeric metric present in all seeds."""
    keys = [k for k in per_seed[0] if all(isinstance(m.get(k), (int, float)) for m in per_seed)]
    return {k: stats.summarize([m[k] for m in per_seed]) for k in keys}


def mean_ci(s: stats.Summary, fmt: str) -> str:
    """'0.1234 ± 0.0012' (± the 95% CI half-width), or the bare mean for one seed."""
    if s.n < 2 or not math.isfinite(s.ci_high):
        return format(s.mean, fmt)
    return f"{format(s.mean, fmt)} ± {format((s.ci_high - s.ci_low) / 2, fmt)}"


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
    """Welch comparison KL − L1 over seeds for each metric both variants have."""
    rows = []
    for key in metrics:
        if not all(key in m for m in l1_seeds + kl_seeds):
            continue
        label, fmt, better = METRICS[key]
        d = stats.welch([m[key] for m in kl_seeds], [m[key] for m in l1_seeds])
        rows.append({"metric": key, "label": label, "fmt": fmt, "better": better, "difference": d,
                     "sentence": difference_sentence(metrics[key], d, fmt)})
    return rows


def pareto_front(l0: np.ndarray, fvu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points not beaten by a sparser one: sorted by L0, each with lower FVU than every sparser point.

    A penalty family traces one curve, but two families (KL's beta and rho sweeps) or noise can leave
    points above the curve; the frontier is the best FVU reached at each sparsity.
    """
    l0, fvu = np.asarray(l0, float), np.asarray(fvu, float)
    keep = (l0 > 0) & np.isfinite(l0) & np.isfinite(fvu)
    order = np.argsort(l0[keep], kind="stable")
    xs, ys = l0[keep][order], fvu[keep][order]
    front_x, front_y, best = [], [], math.inf
    for x, y in zip(xs, ys):
        if y < best:
            front_x.append(x)
            front_y.append(y)
            best = y
    return np.array(front_x), np.array(front_y)


def matched_l0(points: dict[str, tuple[np.ndarray, np.ndarray]], seed_sd: dict[str, float],
               n_seeds: dict[str, int], n_targets: int = 3) -> list[dict]:
    """FVU of the L1 and KL frontiers at common L0 values, and KL − L1 there with its interval.

    points: penalty ("l1", "kl") -> (L0 values, FVU values) of every run on the frontier.
    seed_sd / n_seeds: FVU's seed-to-seed std at the default strength and how many seeds measured it.
    """
    fronts = {p: pareto_front(*xy) for p, xy in points.items()}
    if any(len(x) < 2 for x, _ in fronts.values()):
        return []
    targets = stats.common_grid([(x.min(), x.max()) for x, _ in fronts.values()], n=n_targets)
    rows = []
    for target in targets:
        fvu = {p: float(stats.interpolate_at(x, y, [target])[0]) for p, (x, y) in fronts.items()}
        d = stats.matched_difference(fvu["kl"], fvu["l1"], seed_sd["kl"], seed_sd["l1"], n_seeds["kl"], n_seeds["l1"])
        rows.append({"l0": float(target), "fvu_l1": fvu["l1"], "fvu_kl": fvu["kl"], "difference": d,
                     "sentence": difference_sentence("FVU", d, ".4f", context=f"At L0 ≈ {target:.3g}")})
    return rows


def matched_verdict(arch: str, rows: list[dict]) -> str:
    """The architecture's L1-vs-KL verdict at matched sparsity, from the matched-L0 rows only."""
    if not rows:
        return (f"{arch}: the L1 and KL frontiers do not overlap in L0 (or have fewer than two points each), "
                "so they cannot be compared at matched sparsity; widen the sweep in params.yaml.")
    span = f"L0 ≈ {rows[0]['l0']:.3g} to {rows[-1]['l0']:.3g}"
    winners = ["KL" if r["difference"].diff < 0 else "L1" for r in rows]
    significant = [r["difference"].p < 0.05 for r in rows]  # False for nan
    if len(set(winners)) == 1:
        winner, loser = winners[0], ("L1" if winners[0] == "KL" else "KL")
        if all(significant):
            return f"{arch}: at matched sparsity ({span}) {winner} reconstructs better than {loser} at every L0 compared."
        if not any(significant):
            return (f"{arch}: at matched sparsity ({span}) {winner} has the lower FVU at every L0 compared, "
                    "but at none is the difference significant at 5%.")
        where = ", ".join(f"{r['l0']:.3g}" for r, s in zip(rows, significant) if s)
        return (f"{arch}: at matched sparsity ({span}) {winner} has the lower FVU at every L0 compared; "
                f"the difference is significant at 5% at L0 ≈ {where} only.")
    parts = [f"{w} at L0 ≈ {r['l0']:.3g}{'' if s else ' (not significant)'}" for w, r, s in zip(winners, rows, significant)]
    return f"{arch}: no consistent winner at matched sparsity ({span}): lower FVU for " + ", ".join(parts) + "."


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
