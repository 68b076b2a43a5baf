"""K sparse autoencoders of one architecture as one stacked model: stacked weights, batched matmuls.

Every model of a stack sees the same batch and has its own weights, code activation, penalty
and loss; nothing is shared but the input. The stack does the linear algebra: the encoder's
pre-activations, the decoder, the reconstruction loss (per image, the summed squared error,
averaged over images, as in `training.reconstruction_loss`) and the gradients of all of them,
written out by hand, because autograd's intermediate tensors are most of a small model's
step time on a CPU. The code activation and the penalty, elementwise on the code, go through
autograd in the trainer (`training.train_stack`), so a penalty is defined once (penalties.py).

A stack starts from single models (`LinearSAE` / `ConvSAE`) and exports each model back in
their state_dict format, so evaluation, plots and saved weights know nothing of stacks.

Layouts, for K models and a batch of B images (all float32):
  linear  input x (B, 784); code (K, B, hidden)
          encoder We (K, 784, hidden), be (K, 1, hidden); decoder Wd (K, hidden, 784), bd (K, 1, 784)
  conv    code (K, B*49, channels): the 7x7 positions of each image, channels last
          The padded 32x32 image is an 8x8 grid of 4x4 pixel blocks. The 8x8 stride-4 kernel
          covers 2x2 blocks, so patch (i, j) is blocks (i..i+1, j..j+1), and its 64 weights are
          ordered (block row a, block column b, then the 16 pixels of the block): see
          `_conv_weight_order`. Encoder: one matmul over the patches of the batch, which are
          cut once for the whole training set (`prepare`). Decoder: one matmul to each
          position's four 4x4 blocks, then four shifted adds of whole block grids: the
          transposed convolution without fold's scatter. Its gradient is the same four
          shifted views read back (a gather).
          encoder We (K, 64, channels), be (K, 1, channels); decoder Wd (K, channels, 64), bd (K, 1, 1)

Gradients are written into `self.grads` (one per parameter, same shapes); `decode` returns the
gradient of the models' summed losses with respect to the code, which the trainer passes back
through the activation and adds the penalty's gradient to before `encode_backward`.

Every large intermediate is written into a buffer kept from step to step (`buffer`): a fresh
tensor of tens of MB costs as much as the matmul that fills it (the allocator hands it back to
the OS and the next step faults every page in again). So a tensor a method returns is
overwritten by the next step's call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .models import ConvSAE, LinearSAE


class StackedSAE:
    """The parameters of K models of one architecture, stacked on a leading model axis."""

    single_model: type

    def __init__(self, encoder_weight, encoder_bias, decoder_weight, decoder_bias):
        self.params = [encoder_weight, encoder_bias, decoder_weight, decoder_bias]
        self.grads = [torch.zeros_like(p) for p in self.params]
        self._buffers: dict[tuple, torch.Tensor] = {}

    def buffer(self, name: str, *shape: int) -> torch.Tensor:
        """An uninitialised tensor kept for the next call with the same name and shape (a short last batch has its own)."""
        key = (name, *shape)
        if key not in self._buffers:
            self._buffers[key] = self.params[0].new_empty(shape)
        return self._buffers[key]

    @property
    def n_models(self) -> int:
        return len(self.params[0])

    def model_views(self, k: int) -> list[torch.Tensor]:
        """Model k's parameters as views into the stack, with their gradients as views too (for per-model optimiser groups)."""
        views = []
        for p, g in zip(self.params, self.grads):
            view = p[k]
            view.grad = g[k]
            views.append(view)
        return views

    def to(self, device: torch.device) -> StackedSAE:
        self.params = [p.to(device) for p in self.params]
        self.grads = [g.to(device) for g in self.grads]
        self._buffers.clear()
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """The stacked parameters, for checkpoints."""
        return {name: p for name, p in zip(("We", "be", "Wd", "bd"), self.params)}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for p, name in zip(self.params, ("We", "be", "Wd", "bd")):
                p.copy_(state[name])

    @staticmethod
    def encoder_input(batch) -> torch.Tensor:
        """What the encoder multiplies, shared by every model: (entries, inputs), one row per code entry's input."""
        raise NotImplementedError

    def encode(self, batch) -> torch.Tensor:
        """Pre-activations (K, entries, units): one matmul per model, all in one call."""
        we, be = self.params[:2]
        x = self.encoder_input(batch)
        return torch.baddbmm(be, x.expand(len(we), *x.shape), we, out=self.buffer("u", len(we), len(x), we.shape[2]))

    def encode_backward(self, grad_u: torch.Tensor, batch) -> None:
        """The encoder's gradients from the gradient of the pre-activations."""
        x = self.encoder_input(batch)
        torch.baddbmm(self.grads[0], x.T.expand(len(grad_u), *x.T.shape), grad_u, beta=0, out=self.grads[0])
        torch.sum(grad_u, 1, keepdim=True, out=self.grads[1])

    def decode(self, z: torch.Tensor, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction loss per model (K,) and its gradient w.r.t. the code; fills the decoder's gradients."""
        raise NotImplementedError

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Unit L2 norm for each code unit's decoder weights, per model (as SparseAutoencoder.normalize_decoder)."""
        decoder = self.params[2]
        decoder /= torch.linalg.vector_norm(decoder, dim=2, keepdim=True).clamp_min(1e-12)


class StackedLinear(StackedSAE):
    single_model = LinearSAE

    @classmethod
    def from_models(cls, models: list[LinearSAE]) -> StackedLinear:
        return cls(
            torch.stack([m.encoder.weight.detach().T for m in models]).contiguous(),
            torch.stack([m.encoder.bias.detach() for m in models]).unsqueeze(1).contiguous(),
            torch.stack([m.decoder.weight.detach().T for m in models]).contiguous(),
            torch.stack([m.decoder.bias.detach() for m in models]).unsqueeze(1).contiguous(),
        )

    def export(self, k: int) -> dict[str, torch.Tensor]:
        """Model k as a LinearSAE state_dict (on the CPU)."""
        we, be, wd, bd = (p[k].detach().cpu() for p in self.params)
        return {"encoder.weight": we.T.contiguous(), "encoder.bias": be[0].clone(),
                "decoder.weight": wd.T.contiguous(), "decoder.bias": bd[0].clone()}

    @staticmethod
    def prepare(images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training set as the stack reads it: (n, 784) uint8."""
        return {"pixels": images.reshape(len(images), -1)}

    @staticmethod
    def batch(data: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"x": data["pixels"][index].float().div_(255.0)}

    @staticmethod
    def encoder_input(batch) -> torch.Tensor:
        return batch["x"]

    def decode(self, z: torch.Tensor, batch) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, wd, bd = self.params
        x, n = batch["x"], len(batch["x"])
        residual = torch.baddbmm(bd, z, wd, out=self.buffer("residual", len(wd), n, 784)).sub_(x)  # x_hat - x
        recon = torch.linalg.vector_norm(residual.flatten(1), dim=1).square_().div_(n)
        scale = 2.0 / n  # d recon / d x_hat = 2 (x_hat - x) / n
        torch.baddbmm(self.grads[2], z.transpose(1, 2), residual, beta=0, alpha=scale, out=self.grads[2])
        torch.sum(residual, 1, keepdim=True, out=self.grads[3]).mul_(scale)
        grad_z = self.buffer("grad_z", *z.shape)
        torch.baddbmm(grad_z, residual, wd.transpose(1, 2), beta=0, alpha=scale, out=grad_z)
        return recon, grad_z



def _conv_weight_order(weight: torch.Tensor) -> torch.Tensor:
    """(channels, 1, 8, 8) conv weights -> (channels, 64) in the stack's (a, b, 4x4 block) order."""
    return weight.reshape(-1, 2, 4, 2, 4).permute(0, 1, 3, 2, 4).reshape(-1, 64)


def _conv_weight_from_order(rows: torch.Tensor) -> torch.Tensor:
    """The inverse of _conv_weight_order: (channels, 64) -> (channels, 1, 8, 8)."""
    return rows.reshape(-1, 2, 2, 4, 4).permute(0, 1, 3, 2, 4).reshape(-1, 1, 8, 8)


class StackedConv(StackedSAE):
    single_model = ConvSAE
    # Pixels of the padded 32x32 image (block layout) that are in the 28x28 image: the loss is on these only.
    _VALID = F.pad(torch.ones(28, 28), (2, 2, 2, 2)).reshape(8, 4, 8, 4).permute(0, 2, 1, 3).reshape(8, 8, 16)

    @classmethod
    def from_models(cls, models: list[ConvSAE]) -> StackedConv:
        return cls(
            torch.stack([_conv_weight_order(m.encoder.weight.detach()).T for m in models]).contiguous(),
            torch.stack([m.encoder.bias.detach() for m in models]).unsqueeze(1).contiguous(),
            torch.stack([_conv_weight_order(m.decoder.weight.detach()) for m in models]).contiguous(),
            torch.stack([m.decoder.bias.detach() for m in models]).view(-1, 1, 1).contiguous(),
        )

    def export(self, k: int) -> dict[str, torch.Tensor]:
        """Model k as a ConvSAE state_dict (on the CPU)."""
        we, be, wd, bd = (p[k].detach().cpu() for p in self.params)
        return {"encoder.weight": _conv_weight_from_order(we.T), "encoder.bias": be[0].clone(),
                "decoder.weight": _conv_weight_from_order(wd), "decoder.bias": bd.reshape(1).clone()}

    @staticmethod
    def prepare(images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training set as the stack reads it, uint8: pixel blocks (n, 8, 8, 16) and patches (n, 49, 64)."""
        padded = F.pad(images.reshape(-1, 28, 28), (2, 2, 2, 2))  # zeros, as the convolution's padding
        blocks = padded.reshape(-1, 8, 4, 8, 4).permute(0, 1, 3, 2, 4).reshape(-1, 8, 8, 16)
        patches = torch.stack([blocks[:, a:a + 7, b:b + 7] for a in (0, 1) for b in (0, 1)], dim=3)
        return {"blocks": blocks.contiguous(), "patches": patches.reshape(-1, 49, 64)}

    @staticmethod
    def batch(data: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"patches": data["patches"][index].float().div_(255.0).view(-1, 64),
                "blocks": data["blocks"][index].float().div_(255.0)}

    @staticmethod
    def encoder_input(batch) -> torch.Tensor:
        return batch["patches"]

    def decode(self, z: torch.Tensor, batch) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, wd, bd = self.params
        target = batch["blocks"]
        k, n = len(wd), len(target)
        # Each position's four 4x4 output blocks, then each added to its place in the 8x8 grid of blocks.
        blocks = torch.bmm(z, wd, out=self.buffer("blocks", k, n * 49, 64)).view(k, n, 7, 7, 2, 2, 16)
        x_hat = self.buffer("x_hat", k, n, 8, 8, 16)
        x_hat[:, :, :7, :7].copy_(blocks[:, :, :, :, 0, 0])
        x_hat[:, :, 7].zero_()
        x_hat[:, :, :7, 7].zero_()
        x_hat[:, :, :7, 1:].add_(blocks[:, :, :, :, 0, 1])
        x_hat[:, :, 1:, :7].add_(blocks[:, :, :, :, 1, 0])
        x_hat[:, :, 1:, 1:].add_(blocks[:, :, :, :, 1, 1])
        residual = x_hat.add_(bd.view(k, 1, 1, 1, 1)).sub_(target).mul_(self._VALID.to(x_hat.device))
        recon = torch.linalg.vector_norm(residual.view(k, -1), dim=1).square_().div_(n)
        scale = 2.0 / n
        grad_blocks = self.buffer("grad_blocks", k, n, 7, 7, 2, 2, 16)  # the same four views, read back
        for a in (0, 1):
            for b in (0, 1):
                grad_blocks[:, :, :, :, a, b].copy_(residual[:, :, a:a + 7, b:b + 7])
        grad_blocks = grad_blocks.view(k, -1, 64)
        torch.baddbmm(self.grads[2], z.transpose(1, 2), grad_blocks, beta=0, alpha=scale, out=self.grads[2])
        torch.sum(residual.view(k, -1), 1, out=self.grads[3].view(k)).mul_(scale)
        grad_z = self.buffer("grad_z", *z.shape)
        torch.baddbmm(grad_z, grad_blocks, wd.transpose(1, 2), beta=0, alpha=scale, out=grad_z)
        return recon, grad_z


STACKS = {"linear": StackedLinear, "conv": StackedConv}
