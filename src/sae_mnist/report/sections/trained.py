"""What was trained: the shared architecture, data, optimiser, budget and recipe; each penalty's learning rate, loss
term, default and frontier size; and where each frontier setting lies against the declared L0 range (placement)."""

from __future__ import annotations

import json

from ...params import ARCHITECTURES, SELECTED
from ..analysis import placement_counts, placement_words
from ..inputs import Inputs
from ..text import PENALTY_LABEL, markdown_table


def budget_text(inputs: Inputs) -> str:
    """'linear 40 epochs = 4,000 steps, conv ...': each architecture's training budget."""
    params = inputs.params
    batches = -(-inputs.n_train // params.train.batch_size)
    epochs = {arch: params.train.of(arch).epochs for arch in inputs.archs}
    return ", ".join(f"{arch} {epochs[arch]} epochs = {batches * epochs[arch]:,} steps" for arch in inputs.archs)


def rates_text(inputs: Inputs) -> str:
    """'linear: L1 0.009, KL 0.009, TopK 0.003; conv: ...; unpenalised 0.003': each penalty's base learning rate."""
    per_arch = [f"{arch}: " + ", ".join(f"{PENALTY_LABEL[p]} {inputs.lr(arch, p):.3g}" for p in SELECTED
                                       if f"{arch}-{p}" in inputs.variants) for arch in inputs.archs]
    return "; ".join(per_arch) + f"; unpenalised models {inputs.params.train.lr:g} (train.lr)"


def recipe_text(inputs: Inputs) -> str:
    params, r_ = inputs.params, inputs.params.recipe
    return (
        f"Every model of an architecture has the same width (linear 784 → {params.model.linear.hidden} → 784; "
        f"conv: an 8×8 stride-4 convolution to {params.model.conv.channels} × 7 × 7 code maps and its transposed "
        f"convolution back), the same data (the fit split: the first {inputs.n_train:,} training images), optimiser "
        f"(Adam), batch size {params.train.batch_size}, budget ({budget_text(inputs)}) and recipe, and a decoder with "
        "unit-norm columns and a per-pixel bias. They differ only in the penalty, the code activation it needs and "
        "the learning rate: each penalty trains at its own base rate, chosen on the validation split (*Learning "
        f"rates*): {rates_text(inputs)}. The recipe, "
        "identical for every variant (see *Recipe "
        f"ablation*): the encoder sees x − b_dec, b_dec starting at the training mean (`center_input`: "
        f"{r_.center_input}); the encoder starts as the decoder's transpose (`encoder_from_decoder`: "
        f"{r_.encoder_from_decoder}); before each Adam step, each unit's decoder gradient loses its component "
        "along the unit's decoder weights, which only changes their norm and which the renormalisation after the "
        f"step undoes (`project_decoder_grad`: {r_.project_decoder_grad}); "
        + (f"then each model's whole gradient is scaled to norm {r_.grad_clip:g} where it is larger (`grad_clip`, "
           "as SAELens's trainer does); " if r_.grad_clip else "the gradient is not clipped (`grad_clip`: none); ")
        + "the learning rate rises linearly over "
        f"the first {r_.lr_warmup:.0%} of steps, "
        f"then follows a {r_.lr_decay} decay to {r_.lr_final:g} × lr"
        + (f", held there for the last {r_.lr_hold:.0%} of steps" if r_.lr_hold else "")
        + "; the penalty coefficient rises linearly over "
        f"the first {r_.penalty_warmup:.0%} of steps.\n"
    )


def penalty_table(inputs: Inputs) -> str:
    penalty = inputs.params.penalty
    sizes = {n: len({json.dumps(pt["setting"], sort_keys=True) for pt in v.points}) for n, v in inputs.variants.items()}

    def count(p: str) -> str:
        return ", ".join(str(sizes.get(f"{a}-{p}", 0)) for a in ARCHITECTURES)

    return markdown_table(
        ["penalty", "code activation", "loss term", "default setting (per arch)", "frontier settings (per arch)"],
        [["none", "ReLU", "– (unpenalised reference)", "–", "1"],
         ["L1", "ReLU", "λ · mean over images of Σⱼ\\|zⱼ\\|",
          "; ".join(f"{a}: λ = {penalty.of('l1', a).lam:g}" for a in ARCHITECTURES), count("l1")],
         ["KL", "scale · sigmoid", "β · Σⱼ KL(ρ ‖ ρ̂ⱼ), ρ̂ⱼ the batch mean of sigmoid(uⱼ)",
          "; ".join(f"{a}: β = {penalty.of('kl', a).beta:g}, ρ = {penalty.of('kl', a).rho:g}, "
                    f"scale {penalty.of('kl', a).scale:g}" for a in ARCHITECTURES), count("kl")],
         ["TopK (reference)", "the k largest pre-activations, ReLU", "–",
          "; ".join(f"{a}: k = {penalty.of('topk', a).k}" for a in ARCHITECTURES), count("topk")]],
    )


def placement_tables(inputs: Inputs, placed: dict[str, dict[str, list[dict]]]) -> list[str]:
    """Per architecture: how many settings of each penalty lie below, inside and above the declared range, and
    each setting's mean L0."""
    md = []
    for arch in inputs.archs:
        lo, hi = inputs.params.sweep.l0_range.of(arch)
        rows, counted = [], []
        for penalty in ("l1", "kl", "topk"):
            if f"{arch}-{penalty}" not in inputs.variants:
                continue
            counts = placement_counts(placed[arch][penalty])
            counted.append(f"{PENALTY_LABEL[penalty]} {counts['inside']} inside, {counts['below']} below, "
                           f"{counts['above']} above")
            rows += [[PENALTY_LABEL[penalty], ", ".join(f"{k} {x:g}" for k, x in p["setting"].items()),
                      f"{p['l0']:.1f}", p["where"]] for p in placed[arch][penalty]]
        md.append(f"{arch}, range L0 {lo:g}–{hi:g}: " + "; ".join(counted) + ".\n")
        md.append(markdown_table(["penalty", "setting", "L0", "against the range"], rows))
    return md


def section(inputs: Inputs, placed: dict[str, dict[str, list[dict]]]) -> str:
    md = ["## What was trained\n", recipe_text(inputs), penalty_table(inputs)]
    md.append("The frontier settings are in `params.yaml` (`penalty:` and `sweep:`); every one is trained on every "
              "seed, the default setting being one of them.\n")
    read = placement_words(inputs.params.lr_select.seed)
    md.append(f"Where each setting lies (L0 at threshold {inputs.theta:g}: {read}) against the declared range "
              "`sweep.l0_range` the verdict is read over. The placement rule: L1 and KL each put the same number "
              "of settings inside it (±1), spaced roughly evenly in log L0, with one reference setting beyond "
              "each end. The protocol places the sweep on the validation split, at the rates lr_select chose, on the "
              "seed it chose them on.\n")
    md += placement_tables(inputs, placed)
    return "\n".join(md)
