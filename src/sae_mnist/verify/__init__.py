"""`make verify`: a reader checks the committed results in minutes, without touching them.

    python -m sae_mnist.verify [--points NAME@SEED ...] [--n-points 3] [--sample-seed S] [--data DIR]
                               [--json FILE] [--no-retrain] [--verbose]

Three checks, each against the files committed at this commit:
1. the identifiers: params.yaml and every result file carry the params SHA-256 and data digest that
   reports/summary.json records (environment.py), and the committed environment beside this machine's;
2. the numbers follow from the result files: every number of the report's Verdict in reports/summary.json and
   metrics/headline.json, recomputed from frontier/ and robustness/ by a separate implementation (recompute.py);
3. the result files follow from training: a sample of frontier points retrained from scratch, each alone, on
   MNIST of the committed digest, their test FVU and L0 at every threshold set beside the committed ones
   (retrain.py), within a measured tolerance (compare.py, docs/verify.md).
It works in a scratch directory and writes nothing else (but --json). Exit status: 0 when every number is
verified, 1 when any differs, 2 when verification cannot run (the message says why).
"""
