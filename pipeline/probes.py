"""DVC stage `probes@<arch>`: see sae_mnist.stages.probes.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.params import ARCHITECTURES
from sae_mnist.stages import probes

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--arch", choices=ARCHITECTURES, required=True)
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--models", type=Path, required=True, help="the architecture's weights: seed-<s>/ per train stage")
parser.add_argument("--frontier", type=Path, required=True, help="the evaluate stages' frontier files (their probe C)")
parser.add_argument("--out", type=Path, required=True, help="JSON file of every probed point's metrics")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(probes.run, args.arch, args.data, args.models, args.frontier, args.out, args.params)
