"""dmux doctor: one line per part, what to do for each failure, exit 1 unless all are fine."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import RunDmux, TmuxServer
from watchers import start_watcher

from dmux_async.health import Check, Part, report


def parts(stdout: str) -> dict[str, tuple[str, str]]:
    """``{part: (status, detail)}`` from a report."""
    found = {}

    for line in stdout.splitlines():
        status, part, detail = line.split(None, 2)
        found[part] = (status, detail)

    return found


def test_report_has_one_aligned_line_per_check() -> None:
    checks = [Check(Part.ENGINE, True, "Docker 1"), Check(Part.WATCHER, False, "start one")]
    assert report(checks) == "ok    engine   Docker 1\nFAIL  watcher  start one"


@pytest.mark.integration
def test_without_a_watcher_says_so_and_fails(run_dmux: RunDmux, tmux_server: TmuxServer) -> None:
    done = run_dmux("doctor")
    found = parts(done.stdout)

    assert done.returncode == 1, done.stderr
    assert list(found) == ["engine", "tmux", "hooks", "watcher"]
    assert found["engine"][0] == "ok" and found["engine"][1].startswith("Docker ")
    assert found["tmux"] == ("ok", f"tmux {tmux_server.out('-V').split()[-1]} server answers "
                             f"at {tmux_server.socket_path}")
    assert found["hooks"][0] == "FAIL" and "start one" in found["hooks"][1]
    assert found["watcher"][0] == "FAIL"
    assert f"dmux -S {tmux_server.socket_path} watch" in found["watcher"][1]


@pytest.mark.integration
def test_with_a_watcher_every_line_is_ok(
    run_dmux: RunDmux, tmux_server: TmuxServer, tmp_path: Path
) -> None:
    watcher = start_watcher(tmux_server, tmp_path / "watch.log")

    try:
        done = run_dmux("doctor")
        quiet = run_dmux("doctor", "--only", "watcher", "--quiet")
    finally:
        watcher.stop()

    found = parts(done.stdout)
    assert done.returncode == 0, done.stdout
    assert [status for status, _ in found.values()] == ["ok"] * 4
    assert found["watcher"][1].startswith(f"pid {watcher.process.pid} answers at ")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


@pytest.mark.integration
def test_only_checks_what_it_is_asked(run_dmux: RunDmux, tmux_server: TmuxServer) -> None:
    engine = run_dmux("doctor", "--only", "engine", "--only", "tmux")
    watcher = run_dmux("doctor", "--only", "watcher", "-q")

    assert (engine.returncode, list(parts(engine.stdout))) == (0, ["engine", "tmux"])
    assert (watcher.returncode, watcher.stdout) == (1, "")


@pytest.mark.integration
def test_no_tmux_server_is_a_failed_line_not_a_crash(run_dmux: RunDmux) -> None:
    missing = f"dmux-test-none-{uuid.uuid4().hex[:8]}"
    done = run_dmux("-L", missing, "doctor", "--only", "tmux", "--only", "hooks")
    found = parts(done.stdout)

    assert done.returncode == 1 and done.stderr == ""
    assert found["tmux"][0] == "FAIL" and "no tmux server is running" in found["tmux"][1]
    assert found["hooks"][0] == "FAIL"
