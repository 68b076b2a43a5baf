"""Evaluation metrics on held-out data, computed in float64.

x, x_hat: images (n, ...) in [0, 1]. z: codes with the unit axis at dim 1,
(n, units) for linear or (n, channels, h, w) for conv.

Definitions (also printed in the report):
  mse          mean squared error per pixel
  fvu          fraction of variance unexplained, sum_i ||x_i - x_hat_i||^2 / sum_i ||x_i - mean_x||^2
  psnr_db      10 log10(1 / mse): peak signal-to-noise ratio for pixels in [0, 1]
  l0           mean number of active code entries per sample (active: activation > threshold);
               for conv every (channel, position) entry counts
  truncated code   the code with every entry at or below the threshold set to zero: what L0 counts,
               decoded to give the frontier's FVU (sigmoid codes are never exactly zero)
  mean_activation  mean code activation over samples and entries
  rho_hat_j        unit j's mean activation (conv: per channel); its mean over units is mean_activation
  dead_fraction    units never active on any test sample (conv: channel active anywhere on the sample)
  always_on_fraction  units active on more than `always_on_above` of test samples
  code_units, dead_units, always_on_units   the same as counts: units (conv: 32 channels, not 1568 entries),
               dead ones, always-on ones; a conv fraction moves in steps of 1/32, which a count says plainly
  hoyer        mean per-sample Hoyer sparsity (sqrt(n) - ||z||_1/||z||_2) / (sqrt(n) - 1):
               1 for a one-hot code, 0 for a constant one; threshold-free (an all-zero code counts as 1)
"""

from __future__ import annotations

import math

import torch


def reconstruction_metrics(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    x, x_hat = x.double().flatten(1), x_hat.double().flatten(1)
    sq_err = (x - x_hat).pow(2).sum()
    mse = (sq_err / x.numel()).item()
    total_var = (x - x.mean(0, keepdim=True)).pow(2).sum()
    return {
        "mse": mse,
        "fvu": (sq_err / total_var).item(),
        "psnr_db": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf,
    }


def firing_frequency(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per unit, the fraction of samples on which it is active (conv: active at any position)."""
    active = z > threshold
    if active.dim() > 2:
        active = active.flatten(2).any(2)
    return active.double().mean(0)


def unit_mean_activation(z: torch.Tensor) -> torch.Tensor:
    """rho_hat_j: each unit's mean activation over samples (and positions for conv)."""
    return z.double().mean(dim=[d for d in range(z.dim()) if d != 1])


def hoyer(z: torch.Tensor) -> torch.Tensor:
    """Per-sample Hoyer sparsity of the flattened code."""
    flat = z.double().flatten(1).abs()
    n = flat.shape[1]
    l1, l2 = flat.sum(1), flat.pow(2).sum(1).sqrt()
    ratio = torch.where(l2 > 0, l1 / l2.clamp_min(1e-300), torch.ones_like(l1))
    return (math.sqrt(n) - ratio) / (math.sqrt(n) - 1)


def truncate(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """The code with every entry at or below `threshold` set to zero."""
    return z * (z > threshold)


def l0(z: torch.Tensor, threshold: float) -> float:
    return (z > threshold).flatten(1).sum(1).double().mean().item()


def sparsity_metrics(z: torch.Tensor, threshold: float, always_on_above: float) -> dict[str, float]:
    freq = firing_frequency(z, threshold)
    dead, always_on = freq == 0, freq > always_on_above
    return {
        "l0": l0(z, threshold),
        "code_size": z[0].numel(),
        "mean_activation": z.double().mean().item(),
        "dead_fraction": dead.double().mean().item(),
        "always_on_fraction": always_on.double().mean().item(),
        "code_units": freq.numel(),
        "dead_units": int(dead.sum()),
        "always_on_units": int(always_on.sum()),
        "hoyer": hoyer(z).mean().item(),
    }
