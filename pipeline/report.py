"""DVC stage `report`: see sae_mnist.stages.report.run."""

import argparse
from pathlib import Path

from sae_mnist.cli import run_stage
from sae_mnist.stages import report

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--eval", type=Path, required=True, help="directory of per-variant evaluation outputs")
parser.add_argument("--logs", type=Path, required=True, help="directory of the train stages' per-epoch losses")
parser.add_argument("--frontier", type=Path, required=True, help="directory of every variant's frontier points")
parser.add_argument("--ablation", type=Path, required=True, help="directory of the recipe ablations")
parser.add_argument("--robustness", type=Path, required=True, help="directory of the robustness studies' results")
parser.add_argument("--wide", type=Path, required=True, help="directory of the wide configuration's results")
parser.add_argument("--baselines", type=Path, required=True, help="the baselines stage's JSON file")
parser.add_argument("--reference", type=Path, nargs="+", required=True,
                    help="the reference implementation's frontiers, one file a seed "
                         "(benchmarks/reference_sae_lr_select.json benchmarks/reference_sae_lr_select_seed1.json)")
parser.add_argument("--lr-select", type=Path, required=True,
                    help="directory of the lr_select stages' files (linear.json, conv.json): each penalty's rate")
parser.add_argument("--sparse-end", type=Path, default=None,
                    help="directory of the sparse_end stages' files (<arch>.json), extra seeds; may be missing")
parser.add_argument("--probes", type=Path, default=None,
                    help="directory of the probes stages' files (<arch>.json): probes along the frontiers")
parser.add_argument("--data", type=Path, required=True, help="output directory of the download stage")
parser.add_argument("--out", type=Path, required=True, help="directory to write the report into")
parser.add_argument("--headline", type=Path, required=True, help="JSON file of the headline metrics (DVC metrics)")
parser.add_argument("--params", type=Path, default=Path("params.yaml"))
args = parser.parse_args()
run_stage(report.run, args.eval, args.logs, args.frontier, args.ablation, args.robustness, args.wide, args.baselines,
          args.reference, args.lr_select, args.data, args.out, args.headline, args.params, args.sparse_end,
          args.probes)
