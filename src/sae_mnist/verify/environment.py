"""The environment the committed results were made in, beside the reader's, and the identifiers they rest on.

The committed environment is what the report's "How to cite" section records (device, Python, platform, package
versions: `reports/report.md`); the reader's is read off this machine the same way (`provenance.environment`),
plus what the report does not record but decides whether retraining can be bitwise: torch's BLAS and the CPU
code path it takes. Differences are flagged, not failed: another CPU is expected to move retrained numbers by
float rounding, which the retraining tolerance allows for.

`identifiers` checks what must be equal for the verification to mean anything: the params.yaml SHA-256 and data
digest that summary.json records against params.yaml (or, where the file changed since, every value a stage read,
as dvc.lock records it) and every result file.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import yaml

from ..io import read_json
from ..staleness import changed_params, dvc_status

HOW_TO_CITE = re.compile(r"^- (device|packages): (.+)$", re.MULTILINE)
REPORT_COMMIT = re.compile(r"report generated at `([0-9a-f]{40})`")


def committed_environment(root: Path) -> dict[str, str]:
    """{'device', 'python', 'platform', '<package>'...} from reports/report.md's How to cite; {} if absent."""
    report = Path(root) / "reports" / "report.md"
    found = dict(HOW_TO_CITE.findall(report.read_text())) if report.is_file() else {}
    env: dict[str, str] = {}
    if "device" in found:
        match = re.match(r"(.+); Python (\S+) on (\S+)$", found["device"])
        env.update(zip(("device", "python", "platform"), match.groups()) if match else {"device": found["device"]})
    for item in found.get("packages", "").split(", "):
        if " " in item:
            name, version = item.split(" ", 1)
            env[name] = version
    return env


def reader_environment(threads: int) -> dict[str, str]:
    """This machine's environment, named as the committed one is, plus torch's BLAS and CPU code path."""
    import torch

    from ..provenance import environment

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # the device string names the thread count that retraining uses
    env = environment(torch.device("cpu"))
    torch.set_num_threads(previous)
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    return {"device": env["device"], "python": env["python"], "platform": env["platform"], **env["packages"],
            "torch BLAS": blas.group(1) if blas else "unknown",
            "torch CPU code path": torch.backends.cpu.get_cpu_capability()}


def compare_environments(committed: dict[str, str], reader: dict[str, str]) -> list[dict]:
    """One row per item: committed value ('not recorded' where the report has none), the reader's, and whether
    they differ (only where both are known)."""
    rows = []
    for key in dict.fromkeys([*committed, *reader]):
        mine, theirs = reader.get(key, "not available"), committed.get(key, "not recorded")
        rows.append({"item": key, "committed": theirs, "here": mine,
                     "differs": key in committed and key in reader and mine != theirs})
    return rows


def report_commit(root: Path) -> str | None:
    """The commit the report was generated at, as its How to cite names it."""
    match = REPORT_COMMIT.search((root / "reports" / "report.md").read_text())
    return match.group(1) if match else None


def params_row(root: Path, recorded: str) -> dict:
    """params.yaml against the SHA-256 summary.json records. Where they differ, what the numbers depend on is checked
    instead: every value a stage read, as dvc.lock records it, must be the same in params.yaml (`dvc status`, as
    `make check-results` reads it; a section no stage reads, e.g. `cluster:`, may have been added). Where git
    history holds the report's commit, its params.yaml must have the recorded SHA-256, and the note names the
    sections changed since."""
    here = (root / "params.yaml").read_bytes()
    row = {"name": "params.yaml SHA-256", "file": "params.yaml", "committed": recorded,
           "found": hashlib.sha256(here).hexdigest()}
    if row["found"] == recorded:
        return {**row, "ok": True}
    try:
        changed = changed_params(dvc_status(root))
    except RuntimeError as e:  # dvc itself failed: say so rather than guess
        return {**row, "ok": False, "note": f"could not compare with dvc.lock: {e}"}
    if changed:
        return {**row, "ok": False, "note": f"values that stages read changed since dvc.lock recorded them: "
                f"{', '.join(changed)}: the committed results are stale (make check-results)"}
    commit = report_commit(root)
    then = subprocess.run(["git", "-C", str(root), "show", f"{commit}:params.yaml"], capture_output=True)
    if not commit or then.returncode:
        return {**row, "ok": True, "note": "every value that stages read is as dvc.lock records it; the report's "
                f"commit ({commit or 'not named'}) is not in this clone's history, so the recorded SHA-256 itself is "
                "not checked (`git fetch --unshallow` checks it)"}
    if hashlib.sha256(then.stdout).hexdigest() != recorded:
        return {**row, "ok": False, "note": f"params.yaml at the report's commit {commit[:7]} does not have the "
                "recorded SHA-256 either: summary.json names a params.yaml that is not in this history"}
    old, new = yaml.safe_load(then.stdout), yaml.safe_load(here)
    others = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return {**row, "ok": True, "note": f"the report's params.yaml (at {commit[:7]}) has the recorded SHA-256; since "
            f"then only {', '.join(others)} changed, and every value that stages read is as dvc.lock records it"}


def identifiers(root: Path) -> list[dict]:
    """params.yaml's SHA-256 and the data digest, as summary.json records them, against params.yaml (params_row)
    and every frontier and robustness file: one row each, with whether it agrees."""
    root = Path(root)
    summary = read_json(root / "reports" / "summary.json")
    rows = [params_row(root, summary["params_sha256"])]
    for folder in ("frontier", "robustness"):
        for path in sorted((root / folder).glob("*.json")):
            found = read_json(path).get("data_digest")
            rows.append({"name": "data digest", "file": str(path.relative_to(root)),
                         "committed": summary["data_digest"], "found": found, "ok": found == summary["data_digest"]})
    return rows
