"""DVC stage `ablation@<arch>`: see sae_mnist.stages.ablation.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.params import ARCHITECTURES
from sae_mnist.stages import ablation

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--rates", type=Path, required=True,
                    help="the lr_select stage's file of this architecture (lr_select/<arch>.json)")
parser.add_argument("--models", type=Path, required=True, help="directory for the ablation stack's weights")
parser.add_argument("--logs", type=Path, required=True, help="directory for its per-epoch losses")
parser.add_argument("--out", type=Path, required=True, help="JSON file of every ablation model's validation metrics")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(ablation.run, args.arch, args.data, args.rates, args.models, args.logs, args.out, args.params)
