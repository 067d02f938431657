"""A `dmux watch` of the tests' own for one tmux server, logging JSON to a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from waiting import wait_until


def events(log_path: Path) -> list[dict[str, object]]:
    lines = log_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def logged(log_path: Path, event: str) -> bool:
    """Whether the watcher's log has an event of this name."""
    return any(e.get("event") == event for e in events(log_path))


@contextmanager
def running_watcher(server_name: str, log_path: Path,
                    env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Start a watcher, wait for its first reconcile, and stop it by its pid at the end."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    full_env.update(env or {})

    with log_path.open("w") as log:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "dmux_async", "-L", server_name, "watch",
             "--log-format", "json", "--log-level", "debug"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=full_env,
        )

    try:
        wait_until(lambda: logged(log_path, "reconciled") or watcher.poll() is not None,
                   timeout=30, what="the watcher's first reconcile")
        assert watcher.poll() is None, log_path.read_text()
        yield watcher
    finally:
        if watcher.poll() is None:
            watcher.send_signal(signal.SIGTERM)

        watcher.wait(timeout=15)
