"""The README's results block, generated from the report stage's reports/summary.json: never typed by hand.

    python -m sae_mnist.report.readme [--check]     (make readme; --check: exit 1 if README.md's block is stale)

rewrites what lies between the README's two `results:` marker lines. A test checks the committed README against
the committed summary, so new results cannot land beside an old block.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

BEGIN = "<!-- results:begin (make readme: generated from the report stage's reports/summary.json; do not edit) -->"
END = "<!-- results:end -->"
WIDTH = 120


def block(summary: dict) -> str:
    """The lines between the markers: each architecture's primary estimand in a table, its verdict sentence, and
    where the full report is."""
    rows = ["| architecture | KL − L1 in FVU (primary estimand) | 95% CI | Holm p | L0 range | seeds |",
            "| --- | --- | --- | --- | --- | --- |"]
    for arch, p in summary["primary"].items():
        if "diff" not in p:
            rows.append(f"| {arch} | no overlap | – | – | – | – |")
            continue
        lo, hi = p["l0_range"]
        rows.append(f"| {arch} | {p['diff']:+.4f} | [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] | {p['holm_p']:.3g} | "
                    f"{lo:.3g}–{hi:.3g} | {len(p['seeds'])} |")
    verdicts = [textwrap.fill(text, WIDTH, initial_indent="- ", subsequent_indent="  ")
                for text in summary["verdicts"].values()]
    smoke = ["> Smoke run: not for citing."] if summary["smoke"] else []
    return "\n".join(smoke + rows + ["", "Positive: L1 reconstructs better at matched sparsity.", ""] + verdicts
                     + ["", "The full report: [`reports/report.md`](reports/report.md) (or "
                        "[`reports/report.html`](reports/report.html))."])


def updated(readme: str, summary: dict) -> str:
    """`readme` with its block replaced by block(summary)."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ValueError(f"README must hold the marker lines {BEGIN!r} and {END!r} once each")
    head, rest = readme.split(BEGIN + "\n")
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block(summary)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--summary", type=Path, default=Path("reports/summary.json"))
    parser.add_argument("--check", action="store_true", help="exit 1 if the block differs from the summary's")
    args = parser.parse_args(argv)
    current = args.readme.read_text()
    new = updated(current, json.loads(args.summary.read_text()))
    if args.check:
        if new != current:
            print(f"{args.readme}'s results block is stale: run `make readme`", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(new)
    print(f"{args.readme}: results block from {args.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
