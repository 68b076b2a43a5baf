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
          encoder We (K, 64, channels), be (K, 1, channels); decoder Wd (K, channels, 64),
          bd (K, 8, 8, 16): the per-pixel decoder bias in the block layout (zero off the image)

With `center_input` (per model, `center`), the encoder sees x - bd: its pre-activations lose
the bias's own patches times the encoder weights, and bd gets that term's gradient too.

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

    def __init__(self, encoder_weight, encoder_bias, decoder_weight, decoder_bias, center: list[bool]):
        self.params = [encoder_weight, encoder_bias, decoder_weight, decoder_bias]
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.center = torch.tensor([float(c) for c in center]).reshape(-1, 1, 1)  # 1: encoder input x - bd
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

    def views(self, start: int, stop: int) -> list[torch.Tensor]:
        """Models start..stop-1's parameters as views into the stack, gradients as views too (an optimiser group)."""
        views = []
        for p, g in zip(self.params, self.grads):
            view = p[start:stop]
            view.grad = g[start:stop]
            views.append(view)
        return views

    def to(self, device: torch.device) -> StackedSAE:
        self.params = [p.to(device) for p in self.params]
        self.grads = [g.to(device) for g in self.grads]
        self.center = self.center.to(device)
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

    def bias_input(self) -> torch.Tensor:
        """The decoder bias as encoder input, (K, positions, inputs): what centring subtracts at each code position."""
        raise NotImplementedError

    def add_bias_input_grad(self, grad: torch.Tensor) -> None:
        """Add the gradient w.r.t. bias_input(), (K, positions, inputs), to the decoder bias's gradient."""
        raise NotImplementedError

    def _encoder_inputs(self, batch) -> torch.Tensor:
        """(K, entries, inputs): the shared input, or with centring each model's x - bd (computed once per step)."""
        x = self.encoder_input(batch)
        if not self.center.any():
            return x.expand(self.n_models, *x.shape)
        if "encoder_inputs" not in batch:
            bias = self.bias_input()  # (K, positions, inputs)
            centred = self.buffer("encoder_inputs", self.n_models, *x.shape)
            torch.sub(x.view(1, -1, *bias.shape[1:]), self.center.unsqueeze(1) * bias.unsqueeze(1),
                      out=centred.view(self.n_models, -1, *bias.shape[1:]))
            batch["encoder_inputs"] = centred
        return batch["encoder_inputs"]

    def encode(self, batch) -> torch.Tensor:
        """Pre-activations (K, entries, units): one matmul per model, all in one call."""
        we, be = self.params[:2]
        x = self._encoder_inputs(batch)
        return torch.baddbmm(be, x, we, out=self.buffer("u", len(we), x.shape[1], we.shape[2]))

    def encode_backward(self, grad_u: torch.Tensor, batch) -> None:
        """The encoder's gradients (and with centring the decoder bias's share) from those of the pre-activations."""
        we = self.params[0]
        x = self._encoder_inputs(batch)
        torch.baddbmm(self.grads[0], x.transpose(1, 2), grad_u, beta=0, out=self.grads[0])
        torch.sum(grad_u, 1, keepdim=True, out=self.grads[1])
        if self.center.any():  # d/d bd of (x - bd) We: minus the code gradient, summed over images, times We^T
            positions = self.bias_input().shape[1]
            per_position = grad_u.view(len(we), -1, positions, we.shape[2]).sum(1)  # (K, positions, units)
            self.add_bias_input_grad(-self.center * torch.bmm(per_position, we.transpose(1, 2)))

    def decode(self, z: torch.Tensor, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction loss per model (K,) and its gradient w.r.t. the code; fills the decoder's gradients."""
        raise NotImplementedError

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Unit L2 norm for each code unit's decoder weights, per model (as SparseAutoencoder.normalize_decoder)."""
        decoder = self.params[2]
        decoder /= torch.linalg.vector_norm(decoder, dim=2, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def project_decoder_grad(self, models: torch.Tensor) -> None:
        """SparseAutoencoder.project_decoder_grad for the models where `models` (K, 1, 1) is 1, none where it is 0."""
        decoder, grad = self.params[2], self.grads[2]
        radial = (grad * decoder).sum(dim=2, keepdim=True).mul_(models)
        grad -= radial * decoder

    @torch.no_grad()
    def clip_grad_norm(self, max_norms: torch.Tensor) -> None:
        """Each model's whole gradient (every parameter's, as one vector) scaled to L2 norm max_norms[k] where it is
        larger; inf: left alone. As torch.nn.utils.clip_grad_norm_ on each single model."""
        norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in self.grads]).sum(0).sqrt()
        scale = (max_norms / (norms + 1e-6)).clamp_(max=1.0)
        for g in self.grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))


class StackedLinear(StackedSAE):
    @classmethod
    def from_models(cls, models: list[LinearSAE]) -> StackedLinear:
        return cls(
            torch.stack([m.encoder.weight.detach().T for m in models]).contiguous(),
            torch.stack([m.encoder.bias.detach() for m in models]).unsqueeze(1).contiguous(),
            torch.stack([m.decoder.weight.detach().T for m in models]).contiguous(),
            torch.stack([m.decoder_bias.detach().reshape(1, 784) for m in models]).contiguous(),
            [m.center_input for m in models],
        )

    def export(self, k: int) -> dict[str, torch.Tensor]:
        """Model k as a LinearSAE state_dict (on the CPU)."""
        we, be, wd, bd = (p[k].detach().cpu() for p in self.params)
        return {"decoder_bias": bd.reshape(1, 28, 28).clone(), "encoder.weight": we.T.contiguous(),
                "encoder.bias": be[0].clone(), "decoder.weight": wd.T.contiguous()}

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

    def bias_input(self):
        return self.params[3]  # (K, 1, 784): one position

    def add_bias_input_grad(self, grad):
        self.grads[3].add_(grad)

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


def _blocks_from_image(images: torch.Tensor) -> torch.Tensor:
    """(..., 28, 28) -> (..., 8, 8, 16): zero-padded to 32x32 (the convolution's padding), as 4x4 blocks."""
    lead = images.shape[:-2]
    padded = F.pad(images.reshape(-1, 28, 28), (2, 2, 2, 2))
    return padded.reshape(-1, 8, 4, 8, 4).permute(0, 1, 3, 2, 4).reshape(*lead, 8, 8, 16)


def _image_from_blocks(blocks: torch.Tensor) -> torch.Tensor:
    """The inverse of _blocks_from_image: (..., 8, 8, 16) -> (..., 28, 28)."""
    lead = blocks.shape[:-3]
    padded = blocks.reshape(-1, 8, 8, 4, 4).permute(0, 1, 3, 2, 4).reshape(-1, 32, 32)
    return padded[:, 2:30, 2:30].reshape(*lead, 28, 28)


def _patches_from_blocks(blocks: torch.Tensor) -> torch.Tensor:
    """(..., 8, 8, 16) -> (..., 49, 64): patch (i, j) is blocks (i + a, j + b) for a, b in {0, 1}."""
    patches = torch.stack([blocks[..., a:a + 7, b:b + 7, :] for a in (0, 1) for b in (0, 1)], dim=-2)
    return patches.reshape(*blocks.shape[:-3], 49, 64)


def _add_patches_to_blocks(patches: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """blocks (..., 8, 8, 16) += each patch's four blocks in place, patches (..., 7, 7, 2, 2, 16): overlap-add."""
    for a in (0, 1):
        for b in (0, 1):
            blocks[..., a:a + 7, b:b + 7, :].add_(patches[..., :, :, a, b, :])
    return blocks


class StackedConv(StackedSAE):
    # Pixels of the padded 32x32 image (block layout) that are in the 28x28 image: the loss is on these only.
    _VALID = _blocks_from_image(torch.ones(28, 28))

    @classmethod
    def from_models(cls, models: list[ConvSAE]) -> StackedConv:
        return cls(
            torch.stack([_conv_weight_order(m.encoder.weight.detach()).T for m in models]).contiguous(),
            torch.stack([m.encoder.bias.detach() for m in models]).unsqueeze(1).contiguous(),
            torch.stack([_conv_weight_order(m.decoder.weight.detach()) for m in models]).contiguous(),
            _blocks_from_image(torch.stack([m.decoder_bias.detach()[0] for m in models])).contiguous(),
            [m.center_input for m in models],
        )

    def export(self, k: int) -> dict[str, torch.Tensor]:
        """Model k as a ConvSAE state_dict (on the CPU)."""
        we, be, wd, bd = (p[k].detach().cpu() for p in self.params)
        return {"decoder_bias": _image_from_blocks(bd).reshape(1, 28, 28).clone(),
                "encoder.weight": _conv_weight_from_order(we.T), "encoder.bias": be[0].clone(),
                "decoder.weight": _conv_weight_from_order(wd)}

    @staticmethod
    def prepare(images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training set as the stack reads it, uint8: pixel blocks (n, 8, 8, 16) and patches (n, 49, 64)."""
        blocks = _blocks_from_image(images.reshape(-1, 28, 28))
        return {"blocks": blocks.contiguous(), "patches": _patches_from_blocks(blocks)}

    @staticmethod
    def batch(data: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"patches": data["patches"][index].float().div_(255.0).view(-1, 64),
                "blocks": data["blocks"][index].float().div_(255.0)}

    @staticmethod
    def encoder_input(batch) -> torch.Tensor:
        return batch["patches"]

    def bias_input(self):
        return _patches_from_blocks(self.params[3])  # (K, 49, 64)

    def add_bias_input_grad(self, grad):
        grad_blocks = _add_patches_to_blocks(grad.view(-1, 7, 7, 2, 2, 16), torch.zeros_like(self.grads[3]))
        self.grads[3].add_(grad_blocks.mul_(self._VALID.to(grad.device)))

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
        residual = x_hat.add_(bd.unsqueeze(1)).sub_(target).mul_(self._VALID.to(x_hat.device))
        recon = torch.linalg.vector_norm(residual.view(k, -1), dim=1).square_().div_(n)
        scale = 2.0 / n
        grad_blocks = self.buffer("grad_blocks", k, n, 7, 7, 2, 2, 16)  # the same four views, read back
        for a in (0, 1):
            for b in (0, 1):
                grad_blocks[:, :, :, :, a, b].copy_(residual[:, :, a:a + 7, b:b + 7])
        grad_blocks = grad_blocks.view(k, -1, 64)
        torch.baddbmm(self.grads[2], z.transpose(1, 2), grad_blocks, beta=0, alpha=scale, out=self.grads[2])
        torch.sum(residual, 1, out=self.grads[3]).mul_(scale)
        grad_z = self.buffer("grad_z", *z.shape)
        torch.baddbmm(grad_z, grad_blocks, wd.transpose(1, 2), beta=0, alpha=scale, out=grad_z)
        return recon, grad_z


STACKS = {"linear": StackedLinear, "conv": StackedConv}
