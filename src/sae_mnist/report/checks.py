"""The report's ✓/✗ checks: what the issue tracker asked the results to meet, one function per check, each a
pure function of result records (unit-tested with hand-made inputs), and all_checks, the report's list in order."""

from __future__ import annotations

import math
from typing import NamedTuple

from .analysis import ArchResult, placement_counts, placement_words
from .inputs import Inputs
from .sections.dead_units import DEAD_LIMIT, many_dead, units_of
from .text import UNIT_NOUN, unit_counts

DEAD_UNIT_LIMITS = (("none", 0.02), ("l1", 0.10), ("kl", 0.10))  # penalty -> most dead units allowed, a fraction
RHO_TARGET = 0.1  # KL reaches its target: mean |ρ̂ − ρ| / ρ at most this on every seed
PLACEMENT_SLACK = 1  # L1 and KL put as many settings inside the declared range, give or take this many


class Check(NamedTuple):
    ok: bool
    text: str


def converged_check(points: list[dict]) -> Check:
    converged = [pt["training"]["convergence"]["converged"] for pt in points]
    return Check(all(converged), f"every run converged ({sum(converged)} of {len(converged)} frontier runs; "
                                 "criterion in *Convergence*)")


def budget_bound_check(arch: str, r: ArchResult) -> Check | None:
    """The runs that have not converged cannot move the primary estimand beyond its 95% interval: measured by the
    robustness study's longest budget (one seed retrained, read on validation) against the same seed's main frontier
    on validation (the one-seed checks' reference), the move set beside the primary's interval half-width. None
    without both rows or without an interval."""
    reference = next((c for c in r.robustness if c.role == "reference" and c.diff is not None), None)
    longer = [c for c in r.robustness if c.study == "budget" and c.factor and c.factor > 1 and c.diff is not None]
    primary = next((c.est for c in r.robustness if c.role == "primary"), None)
    if reference is None or not longer or primary is None or not math.isfinite(primary.difference.ci_high):
        return None
    longest = max(longer, key=lambda c: c.factor)
    move, half = longest.diff - reference.diff, primary.difference.ci_high - primary.difference.diff
    ok = abs(move) <= half
    return Check(ok, f"{arch}: the runs that have not converged cannot move the primary estimand beyond its 95% "
                     f"interval: {longest.label} moves it by {move:+.4f} ({reference.diff:+.4f} → "
                     f"{longest.diff:+.4f}), {'within' if ok else 'more than'} the interval's half-width {half:.4f}")


def dead_unit_check(name: str, arch: str, per_seed: list[dict], limit: float) -> Check:
    """At most `limit` of the code units dead on every seed, the limit in whole units and at least one: 2% of
    32 channels is 0.64, so it allows one (a fraction below one unit would fail on any dead channel)."""
    units = per_seed[0]["code_units"]
    allowed = max(math.floor(limit * units), 1)
    dead = [m["dead_units"] for m in per_seed]
    singular, plural = UNIT_NOUN[arch]
    rule = f"{limit:.0%} of {units}" + (f", at least one {singular}" if limit * units < 1 else "")
    return Check(max(dead) <= allowed,
                 f"{name}: at most {allowed} dead {singular if allowed == 1 else plural} of {units} on every seed "
                 f"({rule}; dead per seed: {unit_counts(per_seed, 'dead_fraction', arch)})")


def unpenalised_below_pca_check(fvu_none: float, pca_fvu, hidden: int) -> Check:
    """The unpenalised linear model reconstructs better than PCA with half its width in components."""
    half = hidden // 2
    return Check(fvu_none < pca_fvu[half - 1], f"unpenalised linear FVU {fvu_none:.4f} below PCA with {half} "
                                               f"components ({pca_fvu[half - 1]:.4f})")


def frontier_below_pca_check(arch: str, penalty: str, r: ArchResult, theta: float) -> Check:
    """The penalty's frontier (mean over seeds) below PCA at k = L0 at every grid point of the primary estimand."""
    est = r.estimands[theta]
    fvu = est.fvu_l1 if penalty == "l1" else est.fvu_kl
    return Check(bool((fvu.mean(axis=0) < r.pca).all()),
                 f"{arch}: the {penalty.upper()} frontier (mean over seeds) is below PCA at k = L0 over the "
                 f"compared range L0 ≈ {est.grid[0]:.3g} to {est.grid[-1]:.3g}")


def rho_target_check(arch: str, per_seed: list[dict]) -> Check:
    err = max(m["rho_hat_relative_error"] for m in per_seed)
    return Check(err <= RHO_TARGET, f"{arch}-kl at its default reaches its target: mean |ρ̂ − ρ| / ρ ≤ {RHO_TARGET:g} "
                                    f"on every seed (largest {err:.3f})")


def placement_check(arch: str, inside_l1: int, inside_kl: int, l0_range: tuple[float, float],
                    read: str = "") -> Check:
    """`read`: how the placement read L0 (analysis.placement_words), named after the counts."""
    return Check(abs(inside_l1 - inside_kl) <= PLACEMENT_SLACK,
                 f"{arch}: L1 and KL put as many settings inside the declared L0 range "
                 f"{'–'.join(f'{b:g}' for b in l0_range)} (±{PLACEMENT_SLACK}): L1 {inside_l1}, KL {inside_kl}"
                 + (f" ({read})" if read else ""))


def frontier_dead_units_check(arch: str, points: dict[str, list[dict]], l0_range: tuple[float, float],
                              units: int) -> Check:
    """No L1 or KL frontier run inside the declared range (every seed) with more than DEAD_LIMIT of its units dead."""
    counts = {p: many_dead(points[p], l0_range) for p in ("l1", "kl")}
    plural = UNIT_NOUN[arch][1]
    found = "; ".join(f"{p.upper()} {n_many} of {n} (most dead: {round(worst * units)} of {units})"
                      for p, (n_many, n, worst) in counts.items())
    return Check(not any(n_many for n_many, _, _ in counts.values()),
                 f"{arch}: no L1 or KL frontier run inside the declared range L0 {l0_range[0]:g}–{l0_range[1]:g} "
                 f"loses more than {DEAD_LIMIT:.0%} of its {plural} ({found}; *Dead units along the frontiers*)")


def probes_converged_check(points: list[dict]) -> Check:
    ok = [pt["metrics"]["probe_converged"] == 1.0 for pt in points if "probe_converged" in pt["metrics"]]
    return Check(all(ok), f"every probe converged ({sum(ok)} of {len(ok)})")


def all_checks(inputs: Inputs, results: dict[str, ArchResult], placed: dict[str, dict[str, list[dict]]],
               reference_check: Check | None) -> list[Check]:
    """The report's checks in its order: convergence (and what a longer budget moves), dead units (defaults, then
    along the frontiers), PCA, ρ̂, placement, the reference, probes."""
    variants, theta = inputs.variants, inputs.theta
    checks = [converged_check(inputs.all_points)]
    checks += [c for c in (budget_bound_check(arch, r) for arch, r in results.items()) if c is not None]
    for arch in inputs.archs:
        for penalty, limit in DEAD_UNIT_LIMITS:
            v = variants.get(f"{arch}-{penalty}")
            if v:
                checks.append(dead_unit_check(v.name, arch, [s["metrics"] for s in v.seeds], limit))
    for arch, r in results.items():
        checks.append(frontier_dead_units_check(arch, r.points, inputs.params.sweep.l0_range.of(arch),
                                                units_of(inputs, arch)))
    if "linear-none" in variants:
        checks.append(unpenalised_below_pca_check(variants["linear-none"].stats["fvu"].mean, inputs.pca_fvu,
                                                  inputs.params.model.linear.hidden))
    for arch, r in results.items():
        if r.estimands[theta] is not None:
            checks += [frontier_below_pca_check(arch, p, r, theta) for p in ("l1", "kl")]
    for arch in inputs.archs:
        v = variants.get(f"{arch}-kl")
        if v:
            checks.append(rho_target_check(arch, [s["metrics"] for s in v.seeds]))
    read = placement_words(inputs.params.lr_select.seed)
    for arch, by_penalty in placed.items():
        if "l1" in by_penalty and "kl" in by_penalty:
            inside = {p: placement_counts(by_penalty[p])["inside"] for p in ("l1", "kl")}
            checks.append(placement_check(arch, inside["l1"], inside["kl"], inputs.params.sweep.l0_range.of(arch),
                                          read))
    if reference_check is not None:
        checks.append(reference_check)
    checks.append(probes_converged_check(inputs.all_points))
    return checks
