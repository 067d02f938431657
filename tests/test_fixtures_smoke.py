"""Prove the shared fixtures work; independent of the dmux package itself."""

from __future__ import annotations

import subprocess

import pytest
from conftest import TmuxServer

pytestmark = pytest.mark.integration


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_image_runs_a_shell(test_image: str) -> None:
    assert docker("run", "--rm", test_image, "sh", "-c", "echo hi") == "hi"


def test_image_has_users_and_writable_tmp(test_image: str) -> None:
    script = "id -un; ls -ld /tmp | cut -c1-10; su nobody -s /bin/sh -c 'touch /tmp/x && echo ok'"
    assert docker("run", "--rm", test_image, "sh", "-c", script).split() == [
        "root",
        "drwxrwxrwt",
        "ok",
    ]


def test_tmux_server_answers(tmux_server: TmuxServer) -> None:
    assert tmux_server.name.startswith("dmux-test-")
    assert tmux_server.socket_path.endswith("/" + tmux_server.name)
    assert tmux_server.out("list-sessions", "-F", "#{session_name}") == "main"
    assert tmux_server.out("display-message", "-p", "-t", "main", "#{window_width}") == "200"


def test_labelled_container_exists(
    docker_engine: None, test_image: str, tmux_server: TmuxServer
) -> None:
    label = f"dmux.tmux={tmux_server.socket_path}"
    cid = docker("create", "--label", label, test_image)
    assert docker("ps", "-aq", "--no-trunc", "--filter", f"label={label}") == cid
