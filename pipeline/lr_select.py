"""DVC stage `lr_select@<arch>`: see sae_mnist.stages.lr_select.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.params import ARCHITECTURES
from sae_mnist.stages import lr_select

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--models", type=Path, required=True, help="directory for the stacks' weights, one folder per rate")
parser.add_argument("--logs", type=Path, required=True, help="directory for their per-epoch losses, one folder per rate")
parser.add_argument("--out", type=Path, required=True, help="JSON file: each penalty's chosen rate and the scores")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(lr_select.run, args.arch, args.data, args.models, args.logs, args.out, args.params)
