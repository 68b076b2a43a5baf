"""DVC stages `train@<arch>-<seed>` and `train_topk@<arch>-<seed>`: see sae_mnist.stages.train.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.layout import REFERENCE_STAGES
from sae_mnist.params import ARCHITECTURES, PENALTIES
from sae_mnist.stages import train

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
parser.add_argument("--seed", type=int, required=True, help="one of params.yaml's seeds")
parser.add_argument("--penalties", nargs="+", choices=PENALTIES,
                    default=[p for p in PENALTIES if p not in REFERENCE_STAGES],
                    help="the penalties whose frontier settings the stack trains (default: the train stage's, all "
                         "but the references, which train alone in stages of their own)")
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--rates", type=Path, required=True,
                    help="the lr_select stage's file of this architecture (lr_select/<arch>.json)")
parser.add_argument("--models", type=Path, required=True, help="directory for the stack's weights")
parser.add_argument("--logs", type=Path, required=True, help="directory for the stack's per-epoch losses")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(train.run, args.arch, args.seed, args.penalties, args.data, args.rates, args.models, args.logs, args.params)
