"""Shell completion: container names complete, from the watcher when one runs; never an error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TmuxServer
from watchers import clean_env, make_container, start_watcher

ROOT = Path(__file__).resolve().parent.parent
COMPLETIONS = ROOT / "contrib" / "completions"
SCRIPTS = {"bash": "dmux.bash", "zsh": "_dmux", "fish": "dmux.fish"}


def dmux_env(**extra: str) -> dict[str, str]:
    env = clean_env()
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def complete_bash(line: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """What typer's bash protocol offers for ``line`` (the word after its last space)."""
    words = line.split(" ")
    protocol = {"_DMUX_COMPLETE": "complete_bash", "COMP_WORDS": line,
                "COMP_CWORD": str(len(words) - 1)}
    return subprocess.run([sys.executable, "-m", "dmux_async"], capture_output=True, text=True,
                          env=dmux_env(**protocol, **(env or {})), timeout=60, check=False)


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_contrib_scripts_are_what_dmux_generates(shell: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dmux_async"], capture_output=True, text=True,
                          env=dmux_env(_DMUX_COMPLETE=f"source_{shell}"), check=True)
    assert (COMPLETIONS / SCRIPTS[shell]).read_text() == done.stdout


@pytest.mark.integration
def test_names_complete_by_what_each_command_takes(
    tmux_server: TmuxServer, test_image: str
) -> None:
    running = make_container(tmux_server, test_image, "running")
    paused = make_container(tmux_server, test_image, "paused")
    server = f"dmux -L {tmux_server.name}"

    offered = {verb: complete_bash(f"{server} {verb} ").stdout.split()
               for verb in ("stop", "start", "delete", "save")}

    assert offered["stop"] == [running]
    assert sorted(offered["start"]) == sorted([running, paused])  # running, but no pane
    assert sorted(offered["delete"]) == sorted(offered["save"]) == sorted([running, paused])
    assert complete_bash(f"{server} delete {paused[:-2]}").stdout.split() == [paused]


@pytest.mark.integration
def test_a_watcher_lists_the_names(
    tmux_server: TmuxServer, test_image: str, tmp_path: Path
) -> None:
    paused = make_container(tmux_server, test_image, "paused")
    watcher = start_watcher(tmux_server, tmp_path / "watch.log")

    try:
        done = complete_bash(f"dmux -L {tmux_server.name} start ")
    finally:
        watcher.stop()

    events = [json.loads(line) for line in watcher.log().splitlines() if line.startswith("{")]
    assert done.stdout.split() == [paused]
    assert any(e.get("event") == "request_handled" and "ls" in str(e.get("command"))
               for e in events)


@pytest.mark.integration
def test_an_unreachable_engine_offers_nothing_quietly(tmux_server: TmuxServer) -> None:
    done = complete_bash(f"dmux -L {tmux_server.name} stop ",
                         env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "", "")


@pytest.mark.integration
def test_the_bash_script_completes_in_a_real_bash(
    tmux_server: TmuxServer, test_image: str, tmp_path: Path
) -> None:
    paused = make_container(tmux_server, test_image, "paused")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dmux").write_text(f'#!/bin/sh\nexec {sys.executable} -m dmux_async "$@"\n')
    (bin_dir / "dmux").chmod(0o755)
    script = (f"source {COMPLETIONS / 'dmux.bash'}; COMP_WORDS=(dmux -L {tmux_server.name} "
              "start ''); COMP_CWORD=4; _dmux_completion dmux; printf '%s\\n' \"${COMPREPLY[@]}\"")
    env = dmux_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    done = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                          env=env, timeout=60, check=False)

    assert done.stdout.split() == [paused], done.stderr
