"""dmux status: counts for a tmux status line, a marker and no traceback on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import RunDmux, TmuxServer
from watchers import make_container, start_watcher

from dmux_async import client
from dmux_async.errors import UserError
from dmux_async.model import Container
from dmux_async.status_line import DEFAULT_FORMAT, FAILED, Counts, count, render


def container(status: str) -> Container:
    return Container(id=status, name=status, image="i", status=status, created=0.0,
                     tmux="/s", auto_pause=True)


def test_count_sorts_by_docker_status() -> None:
    states = ["running", "restarting", "paused", "exited", "created", "dead"]
    assert count(container(s) for s in states) == Counts(running=2, paused=1, exited=3)


def test_render_fills_the_fields() -> None:
    counts = Counts(running=2, paused=1, exited=4)
    assert render(counts, DEFAULT_FORMAT) == "dmux 2▶ 1‖"
    assert render(counts, "{running}/{paused}/{exited}/{total}") == "2/1/4/7"


@pytest.mark.parametrize("fmt", ["{nope}", "{0}", "{running", "{running:d}{paused:zz}"])
def test_a_bad_format_is_a_user_error(fmt: str) -> None:
    with pytest.raises(UserError, match="--format"):
        render(Counts(), fmt)


def test_a_watcher_answers_status() -> None:
    assert "status" in client.HANDED_OVER
    assert client._global_options(["-S", "/x", "status", "-f", "{total}"]) == {"-S": "/x"}


@pytest.mark.integration
def test_counts_a_servers_containers(
    tmux_server: TmuxServer, test_image: str, run_dmux: RunDmux
) -> None:
    for state in ("running", "running", "paused", "exited", "created"):
        make_container(tmux_server, test_image, state)

    assert run_dmux("status").stdout == "dmux 2▶ 1‖\n"
    done = run_dmux("status", "--format", "dmux:{running} run {paused} paused {total}")
    assert (done.returncode, done.stdout) == (0, "dmux:2 run 1 paused 5\n")


@pytest.mark.integration
def test_through_a_watcher_gives_the_same_line(
    tmux_server: TmuxServer, test_image: str, run_dmux: RunDmux, tmp_path: Path
) -> None:
    make_container(tmux_server, test_image, "paused")
    watcher = start_watcher(tmux_server, tmp_path / "watch.log")

    try:
        done = run_dmux("status", "-f", "{paused}/{total}")
    finally:
        watcher.stop()

    assert (done.returncode, done.stdout) == (0, "1/1\n")
    handled = [json.loads(line) for line in watcher.log().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "request_handled" and "status" in str(e.get("command"))
               for e in handled)


@pytest.mark.integration
@pytest.mark.parametrize(("args", "env", "code"), [
    (("--format", "{nope}"), {}, 1),
    ((), {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, 2),
    ((), {"DOCKER_HOST": "tcp://[::1"}, None),  # any failure, even one dmux did not foresee
])
def test_a_failure_prints_only_the_marker(
    run_dmux: RunDmux, args: tuple[str, ...], env: dict[str, str], code: int | None
) -> None:
    done = run_dmux("status", *args, env=env)

    assert done.stdout == f"{FAILED}\n"
    assert done.returncode == code if code else done.returncode != 0
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("dmux: ")
    assert "Traceback" not in done.stderr
