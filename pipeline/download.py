"""DVC stage `download`: see sae_mnist.stages.download.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.stages import download

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", type=Path, required=True, help="directory to write the verified MNIST files into")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(download.run, args.out, args.params)
