"""DVC stage `evaluate@<arch>-<penalty>`: see sae_mnist.stages.evaluate.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.params import ARCHITECTURES, PENALTIES
from sae_mnist.stages import evaluate

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
parser.add_argument("--penalty", choices=PENALTIES, required=True)
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--models", type=Path, required=True, help="the architecture's weights: seed-<s>/ per train stage")
parser.add_argument("--out", type=Path, required=True, help="directory for per-seed metrics and plot data")
parser.add_argument("--metrics", type=Path, required=True, help="JSON file of the metrics averaged over seeds")
parser.add_argument("--frontier", type=Path, required=True, help="JSON file of every frontier point's test metrics")
parser.add_argument("--plot", type=Path, required=True, help="CSV file of every frontier point's L0 and FVU (DVC plot)")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(evaluate.run, args.arch, args.penalty, args.data, args.models, args.out, args.metrics, args.frontier,
          args.plot, args.params)
