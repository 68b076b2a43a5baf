"""DVC stage `wide@<seed>`: see sae_mnist.stages.wide.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.stages import wide

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--seed", type=int, required=True, help="one of params.yaml's seeds")
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--rates", type=Path, required=True,
                    help="the lr_select stage's linear file (lr_select/linear.json): each penalty's rate")
parser.add_argument("--models", type=Path, required=True, help="directory for the wide stack's weights")
parser.add_argument("--logs", type=Path, required=True, help="directory for its per-epoch losses")
parser.add_argument("--out", type=Path, required=True, help="JSON file of the wide models' test metrics and probes")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(wide.run, args.seed, args.data, args.rates, args.models, args.logs, args.out, args.params)
