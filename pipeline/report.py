"""DVC stage `report`: see sae_mnist.stages.report.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.stages import report

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--metrics", type=Path, required=True, help="directory of per-variant metrics JSON files")
parser.add_argument("--eval", type=Path, required=True, help="directory of per-variant evaluation outputs")
parser.add_argument("--logs", type=Path, required=True, help="directory of per-variant training logs")
parser.add_argument("--sweep", type=Path, required=True, help="directory of the sweep stages' frontier points")
parser.add_argument("--baselines", type=Path, required=True, help="the baselines stage's JSON file")
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--out", type=Path, required=True, help="directory to write the report into")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(report.run, args.metrics, args.eval, args.logs, args.sweep, args.baselines, args.data, args.out, args.params)
