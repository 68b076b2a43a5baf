"""The report stage's library: report.md, report.html, figures, summary.json and headline.json from the other
stages' result files, every number, check and sentence computed here (the stage entry: stages/report.py).

    build.py      the report read top to bottom: inputs -> analysis -> checks -> figures, sections -> files
    inputs.py     the result files read into typed records (Inputs, Variant), and which split each names
    analysis.py   per architecture: frontiers, the primary estimand at each threshold, Holm, verdict (ArchResult)
    checks.py     the ✓/✗ checks, one function each
    curve.py      KL − L1 along L0 in words: sign runs, the crossing, the verdict sentences
    text.py       number formats, metric labels, tables, comparison sentences
    figures.py    the report's own figures (the evaluate stage's are sae_mnist.plots)
    sections/     one module per section of report.md
    html.py       report.md as a self-contained page
    outputs.py    summary.json, headline.json, the MLflow run

The estimand itself lives in sae_mnist.estimand, which the robustness stage and the benchmarks import too.
"""
