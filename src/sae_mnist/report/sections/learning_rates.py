"""Each penalty's learning rate (docs/design/verdict-protocol.md, section 2), from the lr_select stage's files.

Per architecture: the grid the rates were chosen from, each penalty's score at each rate (mean log10 validation FVU
of its frontier over its grid, selection.choose), the chosen rate, and any choice at an edge of the grid or not made
inside the declared range. Then the shared-rate sensitivity: the single-seed estimand on the validation split with
both penalties at the shared rate (train.lr, the factor 1 of the grid) beside it with each at its own chosen rate.
"""

from __future__ import annotations

from ...estimand import Estimand, points_estimand
from ..text import PENALTY_LABEL, markdown_table

EDGE_WORDS = {"low": "the grid's lowest rate", "high": "the grid's highest rate"}


def score_rows(selection: dict) -> list[list[str]]:
    """One row per penalty: its score at each rate of the grid (the chosen one in bold), the rate chosen, notes."""
    factors = [v["factor"] for v in selection["variations"]]
    rows = []
    for penalty, choice in selection["chosen"].items():
        scores = choice["mean_log10_fvu"]
        cells = []
        for f in factors:
            value = scores.get(f"{f:g}")
            text = "–" if value is None else f"{value:.4f}"
            cells.append(f"**{text}**" if f == choice["best_factor"] and value is not None else text)
        notes = []
        if choice["at_edge"]:
            notes.append(f"best at {EDGE_WORDS[choice['at_edge']]}: not bracketed")
        if choice["grid_range"] == "shared":
            notes.append("scored where the rates' frontiers overlap, outside the declared range")
        elif choice["grid_range"] == "none":
            notes.append("the rates' frontiers share no L0: train.lr kept")
        rows.append([PENALTY_LABEL[penalty], *cells, f"{choice['lr']:.3g}",
                     "; ".join(notes) or "–"])
    return rows


def rate_points(selection: dict, factor: float, penalty: str) -> list[dict]:
    variation = next(v for v in selection["variations"] if v["factor"] == factor)
    return [p for p in variation["points"] if p["penalty"] == penalty]


def shared_rate_sensitivity(selection: dict, threshold: float,
                            l0_range: tuple[float, float]) -> tuple[Estimand | None, Estimand | None]:
    """(at the shared rate, at the chosen rates): KL − L1 on the validation split, the lr_select seed alone. Each
    seed's stacks start from the same weights and batches at every rate, so the chosen pair is paired as well."""
    chosen = {p: selection["chosen"][p]["best_factor"] for p in ("l1", "kl")}
    shared = points_estimand(rate_points(selection, 1.0, "l1"), rate_points(selection, 1.0, "kl"), threshold,
                             l0_range) if any(v["factor"] == 1.0 for v in selection["variations"]) else None
    own = points_estimand(rate_points(selection, chosen["l1"], "l1"), rate_points(selection, chosen["kl"], "kl"),
                          threshold, l0_range)
    return shared, own


def section(selections: dict[str, dict], threshold: float, l0_ranges: dict[str, tuple[float, float]]) -> str:
    """The section's Markdown, one part per architecture with an lr_select file."""
    md = ["## Learning rates\n",
          "Each penalty trains at its own learning rate, chosen on the validation split (the last training images, "
          "which no model trains on) on one seed: every L1, KL and TopK frontier setting trained at each rate of the "
          "grid, and the rate whose frontier has the lowest mean log10 validation FVU over the primary estimand's "
          "grid of L0 values wins (bold). Unpenalised models keep train.lr.\n"]
    for arch, selection in selections.items():
        factors = [v["factor"] for v in selection["variations"]]
        base = selection["base_lr"]
        md.append(f"### {arch}\n")
        md.append(f"Seed {selection['seed']}, {selection['epochs']} epochs; rates train.lr {base:g} × "
                  f"{', '.join(f'{f:g}' for f in factors)}; validation split of "
                  f"{selection['splits']['validation']['images']} images (SHA-256 "
                  f"{selection['splits']['validation']['sha256'][:12]}…).\n")
        header = ["penalty", *[f"lr {base * f:.3g} (×{f:g})" for f in factors], "chosen lr", "notes"]
        md.append(markdown_table(header, score_rows(selection)))
        shared, own = shared_rate_sensitivity(selection, threshold, l0_ranges[arch])
        if shared is not None and own is not None:
            md.append(f"Shared-rate sensitivity (validation, seed {selection['seed']}): KL − L1 averaged over the "
                      f"grid is {shared.difference.diff:+.4f} FVU with both at {base:g}, and "
                      f"{own.difference.diff:+.4f} with each at its own rate.\n")
    return "\n".join(md)
