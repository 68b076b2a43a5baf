"""The linear probe's cost, as the evaluate stage fits it, against the same probe on sparse, uncentred codes.

    python benchmarks/probe_speed.py [--points conv-l1-lam=0.2 conv-kl-beta=100,rho=0.02,scale=1 ...]
        [--seed 0] [--repeats 2] [--out benchmarks/probe_speed.json]

For each named frontier point (its committed model, models/<arch>/seed-<s>/<name>.pt), the codes of the fit
split's images are probed as `sae_mnist.probes.fit_probe` does (standardised features, lbfgs, at the C the
variant's frontier file chose) and, as the candidate, as a CSR matrix scaled by each unit's standard deviation
but not centred. Centring only moves the (unpenalised) intercept: w·(x − μ)/σ + b = w·x/σ + (b − w·μ/σ), with
the same penalty on w, so both reach the same optimum and differ only by the solver's path and tolerance; what
the candidate saves is the zeros of a sparse code (L1, TopK: exact zeros; KL's sigmoid codes have none, so
they stay dense). Reported per point: code density, each way's seconds (median over repeats, interleaved),
lbfgs iterations and test accuracy, and the sgemm rate measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from training_speed import matmul_gflops  # noqa: E402

from sae_mnist.data import load_split  # noqa: E402
from sae_mnist.heldout import encode_all, load_model  # noqa: E402
from sae_mnist.io import read_json  # noqa: E402
from sae_mnist.params import load_params  # noqa: E402
from sae_mnist.probes import fit_probe  # noqa: E402
from sae_mnist.training import to_float_images  # noqa: E402

DEFAULT_POINTS = ["conv-l1-lam=0.2", "conv-l1-lam=1.2", "conv-kl-beta=100,rho=0.02,scale=1", "linear-l1-lam=0.1"]


def fit_sparse(train_x: np.ndarray, train_y: np.ndarray, C: float, max_iter: int):
    """The candidate: a CSR matrix of the codes, each unit scaled by its standard deviation, not centred."""
    import warnings

    from scipy import sparse
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=C, max_iter=max_iter))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        classifier.fit(sparse.csr_matrix(train_x), train_y)
    return classifier, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def codes(name: str, seed: int, images: dict[str, torch.Tensor], batch_size: int) -> dict[str, np.ndarray]:
    arch = name.split("-")[0]
    weights = ROOT / "models" / arch / f"seed-{seed}" / f"{name}.pt"
    model, _ = load_model(read_json(weights.with_suffix(".json")), weights)
    return {split: encode_all(model, x, batch_size)[1].flatten(1).numpy() for split, x in images.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", nargs="*", default=DEFAULT_POINTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "probe_speed.json")
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    torch.set_num_threads(params.train.threads)
    splits = {s: load_split(ROOT / "data" / "mnist", s, params.split.validation) for s in ("fit", "test")}
    images = {s: to_float_images(torch.from_numpy(split.images.copy()), torch.device("cpu"))
              for s, split in splits.items()}
    sgemm_before = matmul_gflops(torch.device("cpu"))[1]
    rows = []
    for name in args.points:
        variant = "-".join(name.split("-")[:2])
        C = read_json(ROOT / "frontier" / f"{variant}.json")["probe_C"]
        z = codes(name, args.seed, images, params.evaluate.batch_size)
        times: dict[str, list[float]] = {"dense": [], "sparse": []}
        result = {}
        for _ in range(args.repeats):
            for way, fit in (("dense", fit_probe), ("sparse", fit_sparse)):
                start = time.perf_counter()
                classifier, converged = fit(z["fit"], splits["fit"].labels, C, params.probe.max_iter)
                times[way].append(time.perf_counter() - start)
                result[way] = {"iterations": int(classifier[-1].n_iter_.max()), "converged": converged,
                               "test_accuracy": float(np.mean(classifier.predict(z["test"]) == splits["test"].labels))}
        row = {"point": name, "seed": args.seed, "C": C, "density": float((z["fit"] != 0).mean()),
               **{f"{way}_s": round(statistics.median(t), 2) for way, t in times.items()},
               **{f"{way}_{k}": v for way, r in result.items() for k, v in r.items()}}
        row["speedup"] = round(row["dense_s"] / row["sparse_s"], 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {"git_commit": commit, "machine": platform.processor() or platform.machine(), "threads":
           params.train.threads, "sgemm_gflops_before": round(sgemm_before), "sgemm_gflops_after":
           round(matmul_gflops(torch.device("cpu"))[1]), "points": rows}
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
