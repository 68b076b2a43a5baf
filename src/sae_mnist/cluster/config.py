"""The `cluster:` section of params.yaml, typed: where runs live and what each stage's Slurm job asks for.

No stage reads this section (params.py only admits it), so editing it never makes a result stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import BenchmarkError
from ..params import Params, load_params

SLURM_TIME = r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$"  # [D-]HH:MM:SS
# Options the submitter sets itself: a job's dependencies, log, directory and name follow from the plan.
OWN_OPTIONS = ("--dependency", "-d", "--output", "-o", "--error", "-e", "--chdir", "-D", "--parsable", "--job-name",
               "-J", "--kill-on-invalid-dep", "--wrap", "--export", "--cpus-per-task", "-c", "--mem", "--time", "-t",
               "--gres", "--partition", "-p")


class ClusterError(BenchmarkError):
    """The cluster run cannot go ahead; the message says what to set or fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    """What one stage's job asks Slurm for; a field left out comes from `default`."""

    cpus: int | None = Field(default=None, ge=1)        # --cpus-per-task
    mem_mb: int | None = Field(default=None, ge=1)      # --mem (MB); null: the partition's default
    time: str | None = Field(default=None, pattern=SLURM_TIME)  # --time, [D-]HH:MM:SS
    gres: str | None = None                             # --gres, e.g. gpu:1 (set train.device: cuda too)


class ClusterConfig(_Strict):
    partition: str | None = None                        # --partition; `submit --partition P` overrides it
    work_dir: str = ".cluster"                          # job scripts, logs and clones, on a filesystem every node sees
    cache_dir: str | None = None                        # the shared DVC cache; null: this workspace's own cache
    link_types: list[Literal["reflink", "hardlink", "symlink", "copy"]] = ["hardlink", "symlink"]  # in the clones
    shared_group: bool = False                          # cache.shared group: several users write one cache
    default: Resources = Resources(cpus=2, time="02:00:00")
    stages: dict[str, Resources] = {}                   # by stage name (train) or address (train@linear-0)
    sbatch_extra: list[str] = []                        # more sbatch options, e.g. --account=lab

    @field_validator("default")
    @classmethod
    def _default_is_complete(cls, default: Resources) -> Resources:
        if default.cpus is None or default.time is None:
            raise ValueError("default must set cpus and time")
        return default

    @field_validator("sbatch_extra")
    @classmethod
    def _not_our_options(cls, extra: list[str]) -> list[str]:
        for option in extra:
            if option.split("=", 1)[0] in OWN_OPTIONS or any(option.startswith(o) and len(o) == 2 for o in OWN_OPTIONS):
                raise ValueError(f"{option!r}: the submitter sets this itself (resources go in default or stages)")
        return extra

    def resources(self, address: str) -> Resources:
        """`default`, overridden by the stage's name entry, then by its address entry."""
        merged = self.default.model_dump()
        for key in (address.split("@", 1)[0], address):
            if key in self.stages:
                merged.update({k: v for k, v in self.stages[key].model_dump().items() if v is not None})
        return Resources(**merged)

    def check_stages(self, addresses: list[str], threads: int) -> None:
        """Every `stages` key names a stage; every stage gets at least train.threads CPUs."""
        names = {a.split("@", 1)[0] for a in addresses}
        unknown = sorted(set(self.stages) - names - set(addresses))
        if unknown:
            raise ClusterError(f"params.yaml cluster.stages: {', '.join(unknown)} is no stage of dvc.yaml "
                               f"(stages: {', '.join(sorted(names))})")
        short = [a for a in addresses if self.resources(a).cpus < threads]
        if short:
            raise ClusterError(f"params.yaml cluster: {', '.join(short)} would get fewer CPUs than train.threads "
                               f"({threads}); results are bitwise the same only at one thread count, so raise cpus "
                               "or lower train.threads for every run you compare")


def load_cluster_config(params_file: Path) -> tuple[ClusterConfig, Params]:
    """The validated `cluster:` section (defaults where absent) and the params it came with."""
    params = load_params(params_file)  # the whole file is valid first
    try:
        config = ClusterConfig.model_validate(params.cluster or {})
    except ValidationError as e:
        problems = [f"  - cluster.{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (given: {err.get('input')!r})"
                    for err in e.errors()]
        raise ClusterError(f"{params_file}: invalid cluster section:\n" + "\n".join(problems)) from None
    return config, params

