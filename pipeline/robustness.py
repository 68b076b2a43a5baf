"""DVC stage `robustness@<arch>-<study>`: see sae_mnist.stages.robustness.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.params import ARCHITECTURES, STUDIES
from sae_mnist.stages import robustness

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
parser.add_argument("--study", choices=STUDIES, required=True, help="what each factor multiplies: train.epochs or each penalty's rate")
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--rates", type=Path, required=True,
                    help="the lr_select stage's file of this architecture (lr_select/<arch>.json)")
parser.add_argument("--models", type=Path, required=True, help="directory for the stacks' weights, one folder per factor")
parser.add_argument("--logs", type=Path, required=True, help="directory for their per-epoch losses, one folder per factor")
parser.add_argument("--out", type=Path, required=True, help="JSON file of every model's validation metrics, per factor")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(robustness.run, args.arch, args.study, args.data, args.rates, args.models, args.logs, args.out,
          args.params)
