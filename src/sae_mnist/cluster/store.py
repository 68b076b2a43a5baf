"""A multi-job run's MLflow store: one that takes concurrent writers from every node, never SQLite.

Left unset, each job would log to the SQLite file in its own clone (the default store is per repository root),
and the evaluations would not find the training runs they annotate; a shared SQLite file locks, or corrupts on
NFS. A database URI (PostgreSQL, MySQL, MS SQL) or a tracking server backed by a database is accepted.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlparse

from .config import ClusterError

DATABASES = ("postgresql", "mysql", "mssql")
WHAT_TO_SET = ("set MLFLOW_TRACKING_URI to the team's tracking server, e.g. http://mlflow-host:5000 (docs/usage.md: "
               "'A shared tracking server': mlflow server with a PostgreSQL backend store), or to its database, "
               "e.g. postgresql+psycopg2://user@db-host/mlflow")


def require_shared_store(uri: str | None) -> str:
    """`uri` when several jobs on several nodes can log to it at once; else ClusterError saying what to set."""
    if not uri:
        raise ClusterError("MLFLOW_TRACKING_URI is not set, so every job would log to a SQLite file in its own clone "
                           f"and the runs would be scattered and lost; {WHAT_TO_SET}")
    scheme = urlparse(uri).scheme.split("+", 1)[0].lower()
    if scheme in ("", "sqlite", "file"):
        raise ClusterError(f"MLFLOW_TRACKING_URI={uri} is a local store ({scheme or 'a path'}): parallel jobs lock or "
                           f"corrupt it; {WHAT_TO_SET}")
    if scheme in DATABASES:
        return uri
    if scheme not in ("http", "https"):
        raise ClusterError(f"MLFLOW_TRACKING_URI={uri}: unknown scheme {scheme!r}; {WHAT_TO_SET}")
    info_url = uri.rstrip("/") + "/api/3.0/mlflow/server-info"
    try:
        with urllib.request.urlopen(info_url, timeout=10) as response:
            store_type = json.load(response).get("store_type")
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ClusterError(f"the tracking server {uri} does not answer ({e}); start it before submitting, or "
                           f"{WHAT_TO_SET}") from None
    if store_type == "FileStore":
        raise ClusterError(f"the tracking server {uri} keeps runs in files (--backend-store-uri is a directory), "
                           f"which parallel jobs corrupt; {WHAT_TO_SET}")
    # A server reports "SqlStore" for SQLite as well as PostgreSQL: its one process serializes the writes then.
    return uri
