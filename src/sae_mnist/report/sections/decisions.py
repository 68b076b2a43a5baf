"""Decisions and the split each used (docs/design/verdict-protocol.md, section 1): every choice is made on the
validation split, the reported numbers come from the test split, and every final model trains on the fit split
only. The studies' rows name the split their result files record."""

from __future__ import annotations

from ..analysis import placement_words
from ..inputs import Inputs, split_of
from ..text import markdown_table


def split_words(splits: set[str]) -> str:
    """'validation'; several joined, validation first ('validation and test'); '–' for none."""
    return " and ".join(sorted(splits, key=lambda s: (s != "validation", s))) or "–"


def decision_rows(inputs: Inputs, placed: dict[str, dict[str, list[dict]]]) -> list[list[str]]:
    """decision | split | where it is made (and the report's section that shows it)."""
    seed = inputs.params.lr_select.seed
    return [
        ["each penalty's learning rate (L1, KL, TopK; `none` keeps train.lr)", "validation",
         f"`lr_select@<arch>`, seed {seed}: the lowest mean log10 validation FVU over the grid (*Learning rates*)"],
        ["sweep placement: each setting's L0 against the declared range", "validation" if placed else "–",
         f"{placement_words(seed)} (*What was trained*)"],
        ["the probe's inverse regularisation C", "validation",
         "fitted on the fit split, chosen once per variant and kept for all its probes (*Linear probes*)"],
        ["the training budget (epochs per architecture)", "validation",
         "`benchmarks/budget_by_verdict.py --from-study` on the budget study (docs/studies.md: the budgets, "
         "re-checked on the validation split)"],
        ["the recipe (each part on or off)", split_words({split_of(a) for a in inputs.ablations.values()}),
         "`ablation@<arch>` (*Recipe ablation*)"],
        ["whether the verdict's sign holds (other budgets, rates, thresholds)",
         split_words({split_of(s) for studies in inputs.robustness.values() for s in studies.values()}),
         "`robustness@<arch>-<study>` (*Robustness*)"],
        ["none: the reported numbers", "test",
         "the evaluate stages (every frontier point), the baselines, the wide code; extra seeds (`sparse_end`)"],
    ]


def fit_text(inputs: Inputs) -> str:
    """What the models train on, and what that costs."""
    total = inputs.manifest["counts"]["train"]
    splits = inputs.splits
    fit, held = splits["fit"]["images"], splits["validation"]["images"]
    return (f"Final models train on the fit split only: the first {fit:,} of the {total:,} training images (the last "
            f"{held:,} form the validation split, SHA-256 `{splits['validation']['sha256'][:12]}…`), and nothing is "
            f"retrained on all {total:,} after selection. The model whose numbers are reported is then the model that "
            "was selected: a retrain on more data takes more steps per epoch and lands each setting at another L0, "
            f"so the choices would not be of the reported models. The price: every model sees {held:,} fewer images "
            f"({held / total:.0%}; FVU a little higher for every penalty alike, and the comparison is paired). Probe "
            "accuracies (*Linear probes*, the wide code) are therefore not exactly comparable with published numbers, "
            "which train on all 60,000 MNIST training images.\n")


def section(inputs: Inputs, placed: dict[str, dict[str, list[dict]]]) -> str:
    md = ["## Decisions and the split each used\n",
          "Every choice is made on the validation split (the last training images, which no model trains on); the "
          "test split gives only the reported numbers (docs/design/verdict-protocol.md).\n",
          markdown_table(["decision", "split", "where"], decision_rows(inputs, placed)), fit_text(inputs)]
    return "\n".join(md)
