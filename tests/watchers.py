"""Helpers for tests that need dmux containers or a running watcher, made by hand.

Imported as a top-level module, like ``images`` (tests/ is on sys.path).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from conftest import TmuxServer
from waiting import wait_until

from dmux_async.watch.supervisor import WatchPaths


def clean_env() -> dict[str, str]:
    """The test's environment without the variables that tie it to some other tmux."""
    return {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}


def watch_paths(server: TmuxServer) -> WatchPaths:
    return WatchPaths.of(os.path.realpath(server.socket_path))


def answers(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(str(path))
        except OSError:
            return False

    return True


def lock_pid(server: TmuxServer) -> int | None:
    """The pid a watcher wrote in its lock file, if any."""
    try:
        text = watch_paths(server).lock.read_text().strip()
    except OSError:
        return None

    return int(text) if text.isdigit() else None


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM one process we started, and wait for it to go (SIGKILL if it lingers)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    deadline = time.monotonic() + timeout

    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return

        time.sleep(0.05)

    os.kill(pid, signal.SIGKILL)


@dataclass
class Watcher:
    """A ``dmux watch`` started by a test."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

        self.process.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text()


def start_watcher(server: TmuxServer, log_path: Path) -> Watcher:
    """Start ``python -m dmux_async -L NAME watch`` and wait until its socket answers."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dmux_async", "-L", server.name, "watch",
             "--log-format", "json", "--log-level", "debug"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=clean_env(),
        )

    watcher = Watcher(process, log_path)
    socket_path = watch_paths(server).socket

    try:
        wait_until(lambda: answers(socket_path) or process.poll() is not None,
                   what="the watcher's socket")
    except AssertionError:
        watcher.stop()
        raise

    assert process.poll() is None, f"the watcher exited: {watcher.log()}"
    return watcher


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_container(server: TmuxServer, image: str, state: str) -> str:
    """A container labelled like one dmux made for ``server``, in ``state``; its name."""
    name = f"t-{state}-{uuid.uuid4().hex[:8]}"
    labels = ["--label", f"dmux.name={name}", "--label", f"dmux.tmux={server.socket_path}"]

    if state == "created":
        docker("create", "--name", name, *labels, image, "sleep", "600")
        return name

    docker("run", "-d", "--name", name, *labels, image, "sleep", "600")

    if state == "paused":
        docker("pause", name)
    elif state == "exited":
        docker("kill", name)
        wait_until(lambda: docker("inspect", "-f", "{{.State.Status}}", name) == "exited",
                   what=f"{name} to exit")

    return name
