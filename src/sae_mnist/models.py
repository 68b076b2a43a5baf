"""Sparse-autoencoder architectures: `encode`, `decode`, and nothing the penalties need to know.

Both decoders are linear, with each code unit's decoder weights (a column for
`linear`, a transposed-conv filter for `conv`) held at unit L2 norm after every
optimiser step. Without that constraint an activation penalty is meaningless:
the encoder could shrink the code and the decoder grow to compensate.

Both decoders end with a per-pixel bias `b_dec` (a 28x28 image). With `center_input`
the encoder sees x - b_dec (the pre-encoder bias of Bricken et al. 2023), so b_dec,
started at the training mean, centres the data for the encoder.

The code activation is the penalty's (see penalties.py): ReLU for L1 and the
unpenalised reference, a (scaled) sigmoid for KL, TopK for the k-sparse reference.
A model calls it on its code as a stack of one, (1, entries, units).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .params import ModelParams

# activation(pre_activations (models, entries, units), n_images) -> code of the same shape
Activation = Callable[[torch.Tensor, int], torch.Tensor]


class SparseAutoencoder(nn.Module):
    """Interface shared by the architectures. Images are (batch, 1, 28, 28) in [0, 1].

    Codes have the unit (or channel) axis at dim 1: (batch, units) for linear,
    (batch, channels, height, width) for conv.
    """

    def __init__(self, activation: Activation, center_input: bool):
        super().__init__()
        self.activation = activation
        self.center_input = center_input
        self.decoder_bias = nn.Parameter(torch.zeros(1, 28, 28))

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.center_input:
            x = x - self.decoder_bias
        u = self.pre_activations(x)
        return self.code_from_entries(self.activation(self.code_entries(u), x.shape[0]), u.shape)  # shape, not len: exportable

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove from each unit's decoder gradient its component along the unit's (unit-norm) decoder weights.

        That component only changes the weights' norm, which `normalize_decoder` resets after the step; left in,
        Adam's per-coordinate scaling turns it into a move along the sphere that need not descend.
        """
        raise NotImplementedError

    @torch.no_grad()
    def init_code_bias(self, value: float | None) -> None:
        """Start every code unit's pre-activation bias at `value` (None: keep the default init)."""
        if value is not None:
            self.encoder.bias.fill_(value)

    @torch.no_grad()
    def init_encoder_from_decoder(self) -> None:
        """Start the encoder as the transpose of the (unit-norm) decoder (Gao et al. 2024), encoder biases at 0."""
        raise NotImplementedError

    @torch.no_grad()
    def init_decoder_bias(self, mean_image: torch.Tensor) -> None:
        self.decoder_bias.copy_(mean_image.reshape(1, 28, 28))

    def decoder_features(self) -> torch.Tensor:
        """Each code unit's decoder weights as images, (n_units, h, w), for plotting."""
        raise NotImplementedError

    @staticmethod
    def code_entries(z: torch.Tensor) -> torch.Tensor:
        """The code as a stack of one model, (1, entries, units), the layout penalties take (see penalties.py)."""
        raise NotImplementedError

    @staticmethod
    def code_from_entries(entries: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """The inverse of code_entries."""
        raise NotImplementedError


class LinearSAE(SparseAutoencoder):
    """784 -> hidden -> 784; decoder column j is code unit j's 28x28 feature."""

    def __init__(self, hidden: int, activation: Activation, center_input: bool = False):
        super().__init__(activation, center_input)
        self.encoder = nn.Linear(28 * 28, hidden)
        self.decoder = nn.Linear(hidden, 28 * 28, bias=False)
        self.normalize_decoder()

    def pre_activations(self, x):
        return self.encoder(x.flatten(1))

    def decode(self, z):
        return self.decoder(z).view(-1, 1, 28, 28) + self.decoder_bias

    @torch.no_grad()
    def normalize_decoder(self):
        w = self.decoder.weight  # (784, hidden): one column per code unit
        w /= w.norm(dim=0, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def project_decoder_grad(self):
        w, g = self.decoder.weight, self.decoder.weight.grad
        g -= (g * w).sum(dim=0, keepdim=True) * w

    @torch.no_grad()
    def init_encoder_from_decoder(self):
        self.encoder.weight.copy_(self.decoder.weight.T)
        self.encoder.bias.zero_()

    def decoder_features(self):
        return self.decoder.weight.detach().T.reshape(-1, 28, 28)

    @staticmethod
    def code_entries(z):
        return z.unsqueeze(0)  # (1, batch, hidden)

    @staticmethod
    def code_from_entries(entries, shape):
        return entries[0]


class ConvSAE(SparseAutoencoder):
    """One 8x8 stride-4 conv to a channels x 7 x 7 code, one 8x8 transposed conv back.

    The convolutional twin of LinearSAE (one layer each way, weights shared across
    positions). Sparsity applies to the code feature maps; decoder filter c is code
    channel c's feature.

    The weights are an ordinary `nn.Conv2d` / `nn.ConvTranspose2d`, but both run as one
    matmul over the 49 image patches (unfold / fold): with a single input channel
    PyTorch's CPU convolution is 2x slower than that (see benchmarks/training_speed.py),
    and tests check the two agree.
    """

    KERNEL, STRIDE, PADDING = 8, 4, 2  # 28 -> 7 -> 28

    def __init__(self, channels: int, activation: Activation, center_input: bool = False):
        super().__init__(activation, center_input)
        k, s, p = self.KERNEL, self.STRIDE, self.PADDING
        self.encoder = nn.Conv2d(1, channels, kernel_size=k, stride=s, padding=p)
        self.decoder = nn.ConvTranspose2d(channels, 1, kernel_size=k, stride=s, padding=p, bias=False)
        self.normalize_decoder()

    def pre_activations(self, x):
        patches = F.unfold(x, self.KERNEL, padding=self.PADDING, stride=self.STRIDE)  # (b, 64, 49)
        w = self.encoder.weight.flatten(1)  # (channels, 64)
        return (torch.matmul(w, patches) + self.encoder.bias.view(1, -1, 1)).view(x.shape[0], -1, 7, 7)

    def decode(self, z):
        w = self.decoder.weight.flatten(1)  # (channels, 64)
        patches = torch.matmul(w.T, z.flatten(2))  # (b, 64, 49)
        x_hat = F.fold(patches, (28, 28), self.KERNEL, padding=self.PADDING, stride=self.STRIDE)
        return x_hat + self.decoder_bias

    @torch.no_grad()
    def normalize_decoder(self):
        w = self.decoder.weight  # (channels, 1, 8, 8): one filter per code channel
        w /= w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)

    @torch.no_grad()
    def project_decoder_grad(self):
        w, g = self.decoder.weight, self.decoder.weight.grad
        g -= (g * w).flatten(1).sum(dim=1).view(-1, 1, 1, 1) * w

    @torch.no_grad()
    def init_encoder_from_decoder(self):
        self.encoder.weight.copy_(self.decoder.weight)  # the transposed convolution's filters, read as a convolution
        self.encoder.bias.zero_()

    def decoder_features(self):
        return self.decoder.weight.detach()[:, 0]

    @staticmethod
    def code_entries(z):
        return z.permute(0, 2, 3, 1).reshape(1, -1, z.shape[1])  # (1, batch x 49 positions, channels)

    @staticmethod
    def code_from_entries(entries, shape):
        return entries.reshape(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2)


def build_model(arch: str, params: ModelParams, activation: Activation, center_input: bool = False) -> SparseAutoencoder:
    if arch == "linear":
        return LinearSAE(params.linear.hidden, activation, center_input)
    if arch == "conv":
        return ConvSAE(params.conv.channels, activation, center_input)
    raise ValueError(f"unknown architecture {arch!r}; choose from linear, conv")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
