"""`download`: MNIST from the mirrors, verified, or the offline fallback (loudly)."""

from __future__ import annotations

from pathlib import Path

from ..params import load_params


def run(out_dir: Path, params_file: Path) -> None:
    params = load_params(params_file)
    from ..download import download_mnist

    manifest = download_mnist(params.download, out_dir)
    counts = manifest["counts"]
    print(f"{manifest['dataset']}: {counts['train']} train / {counts['test']} test images, "
          f"digest {manifest['digest']} -> {out_dir}")
