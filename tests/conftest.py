"""Shared fixtures: a Docker engine, the offline test image, a private tmux server.

`images` is imported as a top-level module: tests/ is not a package and pytest's
default (prepend) import mode puts this directory on sys.path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

import pytest
from images import ensure_test_image


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs a Docker engine and tmux (fails under CI=..., else skips)"
    )


def _unavailable(reason: str) -> NoReturn:
    """Missing infrastructure is a hard failure in CI, a skip on a dev machine."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


def _clean_env() -> dict[str, str]:
    """os.environ without the variables that tie a process to some other tmux."""
    env = dict(os.environ)
    env.pop("TMUX", None)
    env.pop("TMUX_PANE", None)
    return env


@pytest.fixture(scope="session")
def docker_engine() -> None:
    try:
        info = subprocess.run(
            ["docker", "info"], check=False, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"no Docker engine: {exc}")
    if info.returncode != 0:
        _unavailable(f"no Docker engine: `docker info` failed: {info.stderr.strip()}")


@pytest.fixture(scope="session")
def test_image(docker_engine: None) -> str:
    return ensure_test_image()


def _tmux(name: str, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", name, *args], check=check, capture_output=True, text=True, env=_clean_env()
    )


@dataclass(frozen=True)
class TmuxServer:
    name: str
    socket_path: str

    def cmd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _tmux(self.name, *args)

    def out(self, *args: str) -> str:
        return _tmux(self.name, *args, check=True).stdout.strip()


def _remove_containers(label: str) -> None:
    try:
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={label}"],
            check=False,
            capture_output=True,
            text=True,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], check=False, capture_output=True)
    except OSError:
        pass  # no docker CLI: nothing can have been created


@pytest.fixture
def tmux_server() -> Iterator[TmuxServer]:
    name = f"dmux-test-{uuid.uuid4().hex[:10]}"
    new_session = ["-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", "200", "-y", "50"]
    try:
        _tmux(name, *new_session, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        _unavailable(f"cannot start a tmux server: {exc}")
    server = TmuxServer(name, _tmux(name, "display-message", "-p", "#{socket_path}").stdout.strip())
    try:
        yield server
    finally:
        _remove_containers(f"dmux.tmux={server.socket_path}")
        server.cmd("kill-server")
        Path(server.socket_path).unlink(missing_ok=True)  # tmux 3.3 leaves it behind
        shutil.rmtree(f"{server.socket_path}.dmux", ignore_errors=True)  # dmux's lock


class RunDmux(Protocol):
    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        pane: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def run_dmux(tmux_server: TmuxServer) -> RunDmux:
    """Run `python -m dmux_async -L <server> ...`, optionally as if from inside `pane`."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        pane: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        full_env = _clean_env()
        if pane is not None:
            pid = tmux_server.out("display-message", "-p", "#{pid}")
            full_env["TMUX"] = f"{tmux_server.socket_path},{pid},0"
            full_env["TMUX_PANE"] = pane
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "dmux_async", "-L", tmux_server.name, *args],
            check=False,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )

    return run
