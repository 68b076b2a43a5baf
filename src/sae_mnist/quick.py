"""The quick profile: the whole pipeline on a small configuration, in a throwaway copy, in minutes.

    python -m sae_mnist.quick [DIR]        (`make quick`; DIR defaults to .quick/)

It copies the repository's files (tracked and untracked-but-not-ignored) into DIR, makes it a
git repository of its own, shrinks `params.yaml` (`quick` below: two seeds, fewer images, epochs
and settings, a smaller model, a shorter probe, one factor per robustness study, `smoke: true`), reuses the downloaded data when
there is some, and runs `dvc repro` there, with its own MLflow store. Its report's title says it is a smoke run, not for
citing; the repository's own results are untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml


def copy_repo(source: Path, dest: Path) -> Path:
    """A git repository at `dest` holding `source`'s tracked and untracked-but-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=source, capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        if (source / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "-c", "user.name=sae-mnist", "-c", "user.email=sae-mnist@localhost", "commit", "-qm", "copy"],
                   cwd=dest, check=True)
    return dest


def quick(params: dict) -> None:
    """Shrink a params.yaml dict to the quick profile."""
    params["smoke"] = True
    params["seeds"] = params["seeds"][:2]  # the fewest that paired statistics across seeds can use
    params["train"].update(epochs={"linear": 4, "conv": 4}, max_samples=6000)
    params["model"]["linear"]["hidden"] = 64
    params["model"]["conv"]["channels"] = 8
    for arch in ("linear", "conv"):
        lam = params["penalty"]["l1"][arch]["lam"]
        params["sweep"]["l1"][arch] = {"lam": [lam / 4, lam * 4]}
        kl = params["penalty"]["kl"][arch]
        params["sweep"]["kl"][arch] = [{"beta": 1.0, "scale": kl["scale"], "rho": [kl["rho"] / 2]},
                                       {"beta": 1.0, "scale": 1.0, "rho": [kl["rho"]]}]
        k = params["penalty"]["topk"][arch]["k"]
        params["sweep"]["topk"][arch] = {"k": [max(1, k // 4), k * 2]}
    # Narrow models reach other L0 values: the range their frontiers cover is the verdict's range.
    params["sweep"]["l0_range"] = {"linear": [1, 100000], "conv": [1, 100000]}
    params["wide"]["hidden"] = 200
    params["wide"]["topk"] = {"k": 10}
    params["probe"].update(C=[1.0], max_iter=100, max_samples=6000)  # the images it trained on
    params["robustness"].update(budget_factors=[0.5], lr_factors=[3.0])  # one stack per robustness stage
    params["lr_select"].update(factors={"linear": [1.0, 3.0], "conv": [1.0, 3.0]}, max_rates=2)  # two per arch


def main() -> None:
    root = Path(__file__).resolve().parents[2]
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else root / ".quick").resolve()
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    copy_repo(root, dest)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    quick(params)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # Downloaded already: copied, the download stage (its params unchanged) is up to date and every other stage runs.
    if (root / "data" / "mnist" / "manifest.json").is_file():
        shutil.copytree(root / "data" / "mnist", dest / "data" / "mnist")
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_ROOT", "MLFLOW_TRACKING_URI")}
    # The copy's own code, not the package the environment installed (an editable install of the repository, whose
    # files may change while the run goes on): the results, and the commit they name, come from the copy.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(dest / "src"), env.get("PYTHONPATH")]))
    print(f"quick profile in {dest} (smoke run: not for citing)", flush=True)
    result = subprocess.run(["dvc", "repro"], cwd=dest, env=env)
    if result.returncode != 0:
        sys.exit(result.returncode)
    print(f"\nsmoke-run report: {dest / 'reports' / 'report.html'}")


if __name__ == "__main__":
    main()
