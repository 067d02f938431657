"""`dmux init` of an image the engine lacks: pulled from a registry on loopback.

The registry is Debian's docker-registry, started by the test on a free 127.0.0.1 port;
the image is the offline busybox one, pushed there and untagged locally first.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunDmux, TmuxServer, _unavailable
from engines import free_port
from registry import Registry
from waiting import wait_until
from watching import logged, running_watcher

from dmux_async.pull_progress import ProgressLine, Quiet, for_stream

ROOT = Path(__file__).resolve().parent.parent

# --- the progress line ---------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def layer(status: str, layer_id: str, current: int = 0, total: int = 0) -> dict[str, object]:
    detail = {"current": current, "total": total} if total else {}
    return {"status": status, "id": layer_id, "progressDetail": detail}


def test_progress_line_sums_layers() -> None:
    clock = Clock()
    line = ProgressLine("r/x:1", Terminal(), clock)

    for message in (
        {"status": "Pulling from r/x", "id": "1"},
        layer("Pulling fs layer", "a"), layer("Pulling fs layer", "b"),
        layer("Downloading", "a", 1_000_000, 4_000_000),
        layer("Downloading", "b", 500_000, 1_000_000),
        layer("Download complete", "b"), layer("Pull complete", "b"),
    ):
        line.update(message)

    assert line.line() == ("dmux: pulling r/x:1 [=========               ] 2.0/5.0 MB, "
                           "1/2 layers")


def test_progress_line_before_sizes_are_known() -> None:
    line = ProgressLine("r/x:1", Terminal(), Clock())
    line.update({"status": "Pulling from r/x", "id": "1"})

    assert line.line() == "dmux: pulling r/x:1: Pulling from r/x"


def test_progress_line_redraws_at_most_ten_times_a_second() -> None:
    clock, terminal = Clock(), Terminal()
    line = ProgressLine("r/x:1", terminal, clock)

    line.update(layer("Downloading", "a", 1, 10))
    line.update(layer("Downloading", "a", 2, 10))
    clock.now = 0.2
    line.update(layer("Downloading", "a", 3, 10))

    assert terminal.getvalue().count("\r") == 2


def test_progress_line_fits_the_terminal() -> None:
    terminal = Terminal()  # no real terminal behind it: 80 columns
    line = ProgressLine("r/" + "x" * 200, terminal, Clock())
    line.update({"status": "Waiting"})

    drawn = terminal.getvalue().removeprefix("\r\x1b[K")
    assert len(drawn) == 79


@pytest.mark.parametrize(("ok", "left"), [(True, "dmux: pulled r/x:1\n"), (False, "")])
def test_progress_line_finish(ok: bool, left: str) -> None:
    terminal = Terminal()
    ProgressLine("r/x:1", terminal, Clock()).finish(ok)

    assert terminal.getvalue() == "\r\x1b[K" + left


def test_quiet_without_a_terminal() -> None:
    assert isinstance(for_stream("r/x:1", io.StringIO()), Quiet)
    assert isinstance(for_stream("r/x:1", Terminal()), ProgressLine)


# --- pulling from a registry on loopback ---------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    if not shutil.which("docker-registry"):
        _unavailable("no docker-registry (apt-get install docker-registry)")

    started = Registry.create()

    try:
        started.start()
        yield started
    finally:
        started.stop()


def has_image(image: str) -> bool:
    found = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                           check=False)
    return found.returncode == 0


@pytest.fixture
def remote_image(registry: Registry, test_image: str) -> Iterator[str]:
    """An image only the registry has: pushed, then untagged on the system engine."""
    image = registry.push(test_image, f"dmux-test/pulled-{uuid.uuid4().hex[:8]}:1")
    assert not has_image(image)

    try:
        yield image
    finally:
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)


def status(name: str) -> str:
    found = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() if found.returncode == 0 else "missing"


def main_pane(server: TmuxServer) -> str:
    return server.out("display-message", "-p", "-t", "main", "#{pane_id}")


def containers_of(server: TmuxServer) -> list[str]:
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=dmux.tmux={server.socket_path}"],
        capture_output=True, text=True, check=False,
    )
    return found.stdout.split()


@pytest.mark.integration
def test_init_pulls_a_missing_image(tmux_server: TmuxServer, run_dmux: RunDmux,
                                    remote_image: str) -> None:
    made = run_dmux("init", "-i", remote_image, pane=main_pane(tmux_server))

    assert made.returncode == 0, made.stderr
    assert made.stderr == ""  # no terminal: no progress
    assert status(made.stdout.strip()) == "running"
    assert has_image(remote_image)


@pytest.mark.integration
def test_pull_progress_on_a_terminal(tmux_server: TmuxServer, remote_image: str,
                                     tmp_path: Path) -> None:
    output = tmp_path / "pane-output"
    pane = tmux_server.out("new-window", "-d", "-P", "-F", "#{pane_id}", "-c", str(ROOT), "sh")
    tmux_server.out("pipe-pane", "-o", "-t", pane, f"cat >> {output}")
    command = (f"{sys.executable} -m dmux_async init -i {remote_image}; "
               "echo pull-exit=$?")
    tmux_server.out("send-keys", "-t", pane, command, "Enter")

    def finished() -> re.Match[str] | None:  # the typed line echoes "pull-exit=$?"
        return re.search(r"pull-exit=(\d+)", output.read_text(errors="replace")) if (
            output.exists()) else None

    wait_until(lambda: finished() is not None, timeout=60, what="dmux init in the pane")

    shown = output.read_text(errors="replace")
    exit_code = finished()
    assert exit_code is not None and exit_code.group(1) == "0", shown
    assert f"dmux: pulling {remote_image}" in shown
    assert f"dmux: pulled {remote_image}" in shown


@pytest.mark.integration
def test_pull_through_a_watcher_is_handed_back(tmux_server: TmuxServer, run_dmux: RunDmux,
                                               remote_image: str, tmp_path: Path) -> None:
    """A watcher never pulls: it would hold up every other command, and show no progress."""
    log_path = tmp_path / "watch.log"

    with running_watcher(tmux_server.name, log_path):
        made = run_dmux("init", "-i", remote_image, pane=main_pane(tmux_server))

        assert made.returncode == 0, made.stderr
        assert logged(log_path, "request_handed_back")
        assert status(made.stdout.strip()) == "running"


@pytest.mark.integration
@pytest.mark.parametrize("where", ["missing-on-registry", "no-registry"])
def test_pull_failure_is_one_line_and_leaves_nothing(
    where: str, tmux_server: TmuxServer, run_dmux: RunDmux, registry: Registry,
    test_image: str,
) -> None:
    address = registry.address if where == "missing-on-registry" else f"127.0.0.1:{free_port()}"
    image = f"{address}/dmux-test/nope-{uuid.uuid4().hex[:8]}:1"

    made = run_dmux("init", "-i", image, pane=main_pane(tmux_server))

    assert made.returncode == 1
    assert made.stderr.startswith(f"dmux: cannot pull {image!r}: ")
    assert made.stderr.count("\n") == 1, made.stderr
    assert containers_of(tmux_server) == []
    assert tmux_server.out("list-panes", "-a", "-F", "#{pane_id}").split() == [
        main_pane(tmux_server)]
