"""`sparse_end@<arch>`: more seeds where 3 leave grid points unresolved (docs/design/verdict-protocol.md, section 3).

For each seed of `sparse_end.<arch>.seeds`, the L1 and KL settings it names (frontier settings that bracket the
unresolved grid points) are trained as one stack, as the train stage trains them: on the fit split, each penalty
at the rate lr_select chose for it (`rates_file`), the same recipe and budget. Each model is evaluated on the test
split as the evaluate stage evaluates it: these are reported numbers, which the report's labelled curves add to the
frontier's seeds at the grid points both extra frontiers reach (report/sections/thresholds.py). Writes `<out_file>`:
every model as a frontier file's point; models and per-epoch losses under `<model_dir>/seed-<s>/` and
`<log_dir>/seed-<s>/`; MLflow: a parent run per seed's stack, a child run per model with its test_* metrics.
"""

from __future__ import annotations

from pathlib import Path

from ..params import COMPARED, ParamsError, load_params


def run(arch: str, data_dir: Path, rates_file: Path, model_dir: Path, log_dir: Path, out_file: Path,
        params_file: Path) -> None:
    params = load_params(params_file)
    extra = params.sparse_end.of(arch) if params.sparse_end else None
    if extra is None:
        raise ParamsError(f"{params_file}: sparse_end.{arch} is not set: name the seeds and the settings that "
                          "bracket the unresolved grid points, or remove the stage")
    import torch

    from ..data import load_split, read_manifest
    from ..heldout import evaluated_points, log_held_out_metrics
    from ..io import write_json
    from ..members import at_rates, compared_members, train_members
    from ..rates import read_rates
    from ..provenance import git_commit
    from ..training import to_float_images

    rates, training = read_rates(rates_file, arch), params.train.of(arch)
    members = at_rates([m for m in compared_members(params, arch) if m.settings in extra.settings(m.penalty)],
                       rates, training.lr)
    x = to_float_images(torch.from_numpy(load_split(data_dir, "test").images.copy()), torch.device("cpu"))
    points = []
    for seed in extra.seeds:
        trained = train_members(params, arch, seed, members, data_dir, model_dir / f"seed-{seed}",
                                log_dir / f"seed-{seed}", stage=f"sparse_end@{arch}",
                                stack_name=f"{arch}-sparse_end-seed{seed}", training=training, split="fit")
        evaluated = evaluated_points(members, trained.penalties, trained.models, trained.stack,
                                     trained.result.convergence, seed, training, x, params)
        for point, member, run_id in zip(evaluated, members, trained.run_ids):
            log_held_out_metrics(run_id, point["metrics"])
            point["training"] |= {"lr": member.lr, "mlflow_run_id": run_id}
        points += evaluated
    manifest = read_manifest(data_dir)
    write_json(out_file, {"arch": arch, "seeds": extra.seeds, "rates": {p: rates[p] for p in COMPARED},
                          "points": points, "dataset": manifest["dataset"], "data_digest": manifest["digest"],
                          "git_commit": git_commit()})
