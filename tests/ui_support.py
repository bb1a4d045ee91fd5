"""Run the real dagster-webserver on a free port and ask its GraphQL endpoint what the UI shows."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
WEBSERVER = Path(sys.executable).parent / "dagster-webserver"

# What the asset catalog and an asset's page display (Dagster 1.13 GraphQL schema).
ASSET_NODES_QUERY = """
query UiAssetNodes {
  assetNodes {
    assetKey { path }
    description
    groupName
    kinds
    isMaterializable
    hasAssetChecks
    assetChecksOrError {
      __typename
      ... on AssetChecks {
        checks { name blocking executionForLatestMaterialization { runId status } }
      }
    }
    assetMaterializations(limit: 1) {
      runId
      metadataEntries {
        __typename
        label
        ... on IntMetadataEntry { intValue intRepr }
        ... on MarkdownMetadataEntry { mdStr }
        ... on TableSchemaMetadataEntry { schema { columns { name type } } }
      }
    }
  }
}
"""

WORKSPACE_QUERY = """
query UiWorkspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""

INSTANCE_QUERY = "query UiInstance { instance { info } }"

RUN_QUERY = """
query UiRun($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { runId status } }
}
"""


class WebserverError(RuntimeError):
    """The webserver did not start, or its GraphQL endpoint answered with errors."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(base_url: str, query: str, variables: Mapping[str, Any] | None = None) -> dict:
    """POST one query to ``/graphql``; returns ``data`` or raises with the server's errors."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise WebserverError(f"GraphQL errors from {base_url}: {answer['errors']}")
    return answer["data"]


def _stderr_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_until_loaded(
    process: subprocess.Popen, base_url: str, dagster_home: str, stderr_path: Path, timeout: float
) -> None:
    """Poll until the code location is loaded; fail early if the server exits or errors.

    The answer must come from a server on ``dagster_home``: another one may hold the port.
    """
    deadline = time.monotonic() + timeout
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WebserverError(
                f"dagster-webserver exited with code {process.returncode} before answering; "
                f"stderr:\n{_stderr_tail(stderr_path)}"
            )
        try:
            workspace = graphql(base_url, WORKSPACE_QUERY)["workspaceOrError"]
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last_problem = f"{type(error).__name__}: {error}"
        else:
            if workspace["__typename"] != "Workspace":
                raise WebserverError(f"workspace failed to load: {workspace}")
            entries = workspace["locationEntries"]
            for entry in entries:
                location = entry["locationOrLoadError"] or {}
                if location.get("__typename") == "PythonError":
                    raise WebserverError(
                        f"code location {entry['name']} failed to load: {location['message']}"
                    )
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                info = graphql(base_url, INSTANCE_QUERY)["instance"]["info"] or ""
                if dagster_home not in info or process.poll() is not None:
                    raise WebserverError(
                        f"{base_url} is answered by another server (instance: {info[:300]!r}); "
                        f"ours exited with {process.poll()}; stderr:\n{_stderr_tail(stderr_path)}"
                    )
                return
            last_problem = f"locations still loading: {entries}"
        time.sleep(1)
    raise WebserverError(
        f"dagster-webserver at {base_url} not ready after {timeout:.0f} s ({last_problem}); "
        f"stderr:\n{_stderr_tail(stderr_path)}"
    )


def _stop(process: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the server's process group (webserver and its code server), then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
    with suppress(ProcessLookupError):  # a code server may outlive a webserver that exited
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def running_webserver(
    *, env: Mapping[str, str], log_dir: Path, timeout: float = 150
) -> Iterator[str]:
    """Start ``dagster-webserver -w workspace.yaml`` from the repository root; yield its URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / "webserver.stderr"
    command = [str(WEBSERVER), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with open(log_dir / "webserver.stdout", "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            _wait_until_loaded(process, base_url, env["DAGSTER_HOME"], stderr_path, timeout)
            yield base_url
        finally:
            _stop(process)
