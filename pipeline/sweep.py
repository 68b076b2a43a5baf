"""DVC stage `sweep@<arch>-<penalty>`: see sae_mnist.stages.sweep.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.params import ARCHITECTURES
from sae_mnist.stages import sweep

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
parser.add_argument("--penalty", choices=["l1", "kl"], required=True, help="a penalty with a strength to sweep")
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--out", type=Path, required=True, help="JSON file listing every frontier point")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(sweep.run, args.arch, args.penalty, args.data, args.out, args.params)
