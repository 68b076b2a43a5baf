"""DVC stage `sparse_end@<arch>`: see sae_mnist.stages.sparse_end.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.params import ARCHITECTURES
from sae_mnist.stages import sparse_end

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--rates", type=Path, required=True,
                    help="the lr_select stage's file of this architecture (lr_select/<arch>.json)")
parser.add_argument("--models", type=Path, required=True, help="directory for the extra seeds' weights")
parser.add_argument("--logs", type=Path, required=True, help="directory for their per-epoch losses")
parser.add_argument("--out", type=Path, required=True, help="JSON file of every extra model's test metrics")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(sparse_end.run, args.arch, args.data, args.rates, args.models, args.logs, args.out, args.params)
