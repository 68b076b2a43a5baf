"""DVC stage `baselines`: see sae_mnist.stages.baselines.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.stages import baselines

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--out", type=Path, required=True, help="JSON file of PCA FVU and probe accuracies")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(baselines.run, args.data, args.out, args.params)
