"""dmux watch against a real engine and a real private tmux server.

Each way a pane can disappear must end with its container paused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import RunDmux, TmuxServer
from engines import SocketEngine
from waiting import wait_until

pytestmark = pytest.mark.integration

LOOP = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done"


def status(name: str) -> str:
    result = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}}", name],
        capture_output=True, text=True, check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else "missing"


def pane_of(server: TmuxServer, name: str) -> str | None:
    lines = server.out("list-panes", "-a", "-F", "#{pane_id} #{@dmux-name}").splitlines()
    found = [line.split()[0] for line in lines if line.endswith(f" {name}")]
    return found[0] if found else None


@dataclass
class RunningWatcher:
    process: subprocess.Popen[str]
    log_path: Path

    def events(self) -> list[dict[str, object]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def saw(self, event: str, **fields: object) -> bool:
        return any(
            e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
            for e in self.events()
        )

    def count(self, event: str) -> int:
        return sum(1 for e in self.events() if e.get("event") == event)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

        return self.process.wait(timeout=15)


@pytest.fixture
def start_watcher(
    tmux_server: TmuxServer, tmp_path: Path
) -> Iterator[Callable[[], RunningWatcher]]:
    started: list[RunningWatcher] = []

    def start() -> RunningWatcher:
        log_path = tmp_path / f"watch-{len(started)}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "dmux_async", "-L", tmux_server.name, "watch",
                 "--log-format", "json", "--log-level", "debug"],
                stdout=subprocess.DEVNULL, stderr=log_file, stdin=subprocess.DEVNULL,
                env=env, text=True,
            )
        watcher = RunningWatcher(process, log_path)
        started.append(watcher)
        wait_until(lambda: watcher.saw("reconciled") or process.poll() is not None,
                   what="the watcher's first reconcile")
        return watcher

    yield start

    for watcher in started:
        if watcher.process.poll() is None:
            watcher.stop()


@dataclass
class RestartableEngine(SocketEngine):
    """A dockerd of the test's own, on its own socket, that the test may restart."""

    root: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def unix_host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def start(self) -> None:
        with (self.root / "dockerd.log").open("ab") as log:
            # Its own network namespace: a dockerd started with --bridge none deletes the
            # host's docker0, which the system engine needs.
            self.process = subprocess.Popen(
                ["unshare", "--net", "dockerd", "--data-root", str(self.root / "data"),
                 "--exec-root", str(self.root / "x"), "--pidfile", str(self.root / "pid"),
                 "-H", self.unix_host, "--bridge", "none", "--iptables=false",
                 "--ip-masq=false", "--live-restore"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        wait_until(lambda: self.docker("info").returncode == 0, timeout=60,
                   what="the private dockerd to answer")

    def restart(self) -> None:
        self.end(remove_containers=False)  # live-restore keeps them running across it
        self.start()


@pytest.fixture
def private_engine(docker_engine: None) -> Iterator[RestartableEngine]:
    engine = RestartableEngine(Path(tempfile.mkdtemp(prefix="dmuxd-", dir="/tmp")))
    engine.start()
    try:
        yield engine
    finally:
        engine.end()
        shutil.rmtree(engine.root, ignore_errors=True)


@pytest.fixture
def main_pane(tmux_server: TmuxServer) -> str:
    return tmux_server.out("display-message", "-p", "-t", "main", "#{pane_id}")


def init(run_dmux: RunDmux, pane: str, image: str, *extra: str) -> str:
    result = run_dmux("init", "-i", image, *extra, "--", "sh", "-c", LOOP, pane=pane)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_pane_exited_pauses(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    watcher = start_watcher()
    name = init(run_dmux, main_pane, test_image)
    pane = pane_of(tmux_server, name)
    assert pane is not None

    attach_pid = int(tmux_server.out("display-message", "-p", "-t", pane, "#{pane_pid}"))
    os.kill(attach_pid, signal.SIGKILL)

    wait_until(lambda: status(name) == "paused", what=f"{name} paused")
    # Logged once the pause call returns, which may trail the engine's own state.
    wait_until(lambda: watcher.saw("container_paused", container=name, reason="pane-gone"),
               what="container_paused logged")


@pytest.mark.parametrize("how", ["kill-pane", "kill-window", "last-pane", "kill-session"])
def test_closing_pauses(
    how: str, tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    start_watcher()
    tmux_server.out("new-session", "-d", "-s", "other", "-x", "120", "-y", "40")
    other = tmux_server.out("display-message", "-p", "-t", "other", "#{pane_id}")
    split = ["--split", "window"] if how in ("last-pane", "kill-window") else []
    name = init(run_dmux, other, test_image, *split)
    pane = pane_of(tmux_server, name)
    assert pane is not None and status(name) == "running"

    if how == "kill-pane":
        tmux_server.out("kill-pane", "-t", pane)
    elif how == "kill-window":
        tmux_server.out("kill-window", "-t", pane)
    elif how == "last-pane":
        tmux_server.out("respawn-pane", "-k", "-t", pane, "true")  # its program ends
    else:
        tmux_server.out("kill-session", "-t", "other")

    wait_until(lambda: status(name) == "paused", what=f"{name} paused after {how}")


def test_kill_server_pauses_everything(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    watcher = start_watcher()
    names = [init(run_dmux, main_pane, test_image, "--split", "window") for _ in range(3)]

    tmux_server.cmd("kill-server")

    for name in names:
        wait_until(lambda n=name: status(n) == "paused", what=f"{name} paused")  # type: ignore[misc]

    assert watcher.saw("tmux_server_gone")

    tmux_server.out("-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", "200", "-y", "50")
    wait_until(lambda: watcher.saw("tmux_server_back"), what="the watcher to see the server")
    hooks = tmux_server.out("show-hooks", "-g")
    assert "wait-for -S dmux-watch" in hooks


def test_watcher_down_then_started_pauses_orphans(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    name = init(run_dmux, main_pane, test_image)
    pane = pane_of(tmux_server, name)
    assert pane is not None
    tmux_server.out("kill-pane", "-t", pane)
    time.sleep(0.3)
    assert status(name) == "running"  # nobody watched

    start_watcher()

    wait_until(lambda: status(name) == "paused", what="the orphan paused at start-up")


def test_watcher_killed_hard_then_restarted(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    first = start_watcher()
    first.process.kill()
    first.process.wait(timeout=10)

    name = init(run_dmux, main_pane, test_image)
    second = start_watcher()
    assert second.process.poll() is None, second.log_path.read_text()
    pane = pane_of(tmux_server, name)
    assert pane is not None
    tmux_server.out("kill-pane", "-t", pane)

    wait_until(lambda: status(name) == "paused", what=f"{name} paused by the new watcher")


def test_second_watcher_refused(
    tmux_server: TmuxServer, start_watcher: Callable[[], RunningWatcher], run_dmux: RunDmux,
) -> None:
    first = start_watcher()

    second = run_dmux("watch", timeout=20)

    assert second.returncode == 1
    assert second.stderr.startswith("dmux: a dmux watcher already runs")
    assert f"pid {first.process.pid}" in second.stderr
    assert first.process.poll() is None


def test_sigterm_stops_cleanly_and_leaves_no_child(
    tmux_server: TmuxServer, start_watcher: Callable[[], RunningWatcher],
) -> None:
    watcher = start_watcher()
    children = _children(watcher.process.pid)
    assert children, "the watcher waits on tmux through a child `tmux wait-for`"

    assert watcher.stop() == 0

    assert watcher.saw("watcher_stopped")
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)
    assert "dmux-watch" not in tmux_server.out("show-hooks", "-g")


def test_pane_killed_while_stop_runs(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    start_watcher()
    name = init(run_dmux, main_pane, test_image)
    pane = pane_of(tmux_server, name)
    assert pane is not None
    killer = threading.Thread(target=lambda: tmux_server.cmd("kill-pane", "-t", pane))

    killer.start()
    result = run_dmux("stop", name)
    killer.join()

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == name
    wait_until(lambda: status(name) == "paused")
    assert pane_of(tmux_server, name) is None


def test_container_exiting_by_itself_closes_its_pane(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    start_watcher()
    result = run_dmux("init", "-i", test_image, "--", "sh", "-c", "sleep 1", pane=main_pane)
    name = result.stdout.strip()

    wait_until(lambda: status(name) == "exited", what=f"{name} exited")
    wait_until(lambda: pane_of(tmux_server, name) is None, what="its pane closed")

    again = run_dmux("start", name, pane=main_pane)
    assert again.returncode == 0, again.stderr
    assert status(name) in ("running", "exited")


def test_container_removed_outside_dmux_closes_its_pane(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    tmux_server.out("set-option", "-g", "remain-on-exit", "on")  # the pane would linger
    watcher = start_watcher()
    name = init(run_dmux, main_pane, test_image)
    pane = pane_of(tmux_server, name)

    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)

    wait_until(lambda: pane_of(tmux_server, name) is None, what="its pane closed")
    wait_until(lambda: watcher.saw("container_destroyed", container=name))
    # The watcher logs pane_closed just after the kill, so the log may trail the pane.
    wait_until(lambda: watcher.saw("pane_closed", pane=pane), what="pane_closed logged")


def test_no_auto_pause_keeps_running(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    start_watcher()
    kept = init(run_dmux, main_pane, test_image, "--no-auto-pause")
    paused = init(run_dmux, main_pane, test_image)

    for name in (kept, paused):
        pane = pane_of(tmux_server, name)
        assert pane is not None
        tmux_server.out("kill-pane", "-t", pane)

    wait_until(lambda: status(paused) == "paused", what="the control container paused")
    assert status(kept) == "running"


def test_hung_tmux_is_not_an_empty_answer(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    watcher = start_watcher()
    name = init(run_dmux, main_pane, test_image)
    server_pid = int(tmux_server.out("display-message", "-p", "#{pid}"))

    os.kill(server_pid, signal.SIGSTOP)
    try:
        # An engine event rings the watcher while tmux cannot answer: a container with
        # this server's label starts (not one of dmux's: its name label is missing).
        subprocess.run(["docker", "run", "-d", "--label", f"dmux.tmux={tmux_server.socket_path}",
                        test_image, "sleep", "60"], check=True, capture_output=True)
        wait_until(lambda: watcher.saw("reconcile_skipped"), timeout=15,
                   what="a reconcile skipped for want of an answer")
        assert status(name) == "running"
    finally:
        os.kill(server_pid, signal.SIGCONT)

    time.sleep(1)
    assert status(name) == "running"


@pytest.mark.timeout(400)
def test_init_and_start_never_end_paused_while_the_watcher_is_busy(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    start_watcher()
    busy = threading.Event()

    def ring() -> None:  # keep the watcher reconciling all the time
        while not busy.is_set():
            tmux_server.cmd("wait-for", "-S", "dmux-watch")
            time.sleep(0.02)

    ringer = threading.Thread(target=ring)
    ringer.start()
    try:
        name = init(run_dmux, main_pane, test_image, "--split", "window")

        for round_ in range(int(os.environ.get("ROUNDS", "50"))):
            direct = {"DMUX_NO_WATCHER": "1"} if round_ % 25 == 0 else {}
            assert run_dmux("stop", name, env=direct).returncode == 0
            started = run_dmux("start", name, pane=main_pane, env=direct)
            assert started.returncode == 0, started.stderr
            assert status(name) == "running", f"round {round_}: {name} is {status(name)}"

            made = run_dmux("init", "-i", test_image, pane=main_pane, env=direct)
            assert made.returncode == 0, made.stderr
            fresh = made.stdout.strip()
            assert status(fresh) == "running", f"round {round_}: {fresh} is {status(fresh)}"
            assert run_dmux("delete", fresh, env=direct).returncode == 0
    finally:
        busy.set()
        ringer.join()


def _children(pid: int) -> list[int]:
    found = []

    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(c) for c in children]

    return found


def test_start_all_opens_a_tiled_window_and_says_which_pane(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher],
) -> None:
    start_watcher()
    names = [init(run_dmux, main_pane, test_image) for _ in range(3)]

    for name in names:
        assert run_dmux("stop", name).returncode == 0

    windows_before = tmux_server.out("list-windows", "-a").count("\n")
    result = run_dmux("start", "--all", "--json", pane=main_pane)

    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout)
    assert sorted(o["name"] for o in outcomes) == sorted(names)
    assert all(o["action"] == "resumed" for o in outcomes)
    assert tmux_server.out("list-windows", "-a").count("\n") == windows_before + 1

    for outcome in outcomes:
        assert pane_of(tmux_server, outcome["name"]) == outcome["pane"]
        assert status(outcome["name"]) == "running"

    windows = {tmux_server.out("display-message", "-p", "-t", o["pane"], "#{window_id}")
               for o in outcomes}
    assert len(windows) == 1


@pytest.mark.timeout(180)
def test_engine_restart_is_survived(
    tmux_server: TmuxServer, run_dmux: RunDmux, main_pane: str, test_image: str,
    start_watcher: Callable[[], RunningWatcher], private_engine: RestartableEngine,
) -> None:
    private_engine.load(test_image)
    os.environ["DOCKER_HOST"] = private_engine.unix_host  # for the watcher and dmux alike
    try:
        watcher = start_watcher()
        env = {"DOCKER_HOST": private_engine.unix_host}
        first = run_dmux("init", "-i", test_image, "--", "sh", "-c", LOOP, pane=main_pane, env=env)
        assert first.returncode == 0, first.stderr

        private_engine.restart()
        wait_until(lambda: watcher.count("engine_connected") >= 2, timeout=60,
                   what="the watcher to reconnect")

        second = run_dmux("init", "-i", test_image, "--", "sh", "-c", LOOP, pane=main_pane, env=env)
        assert second.returncode == 0, second.stderr
        name = second.stdout.strip()
        pane = pane_of(tmux_server, name)
        assert pane is not None
        tmux_server.out("kill-pane", "-t", pane)

        wait_until(lambda: private_engine.status(name) == "paused", what=f"{name} paused")
    finally:
        del os.environ["DOCKER_HOST"]


def test_a_broken_engine_setting_in_a_request_does_not_stop_the_watcher(
    tmux_server: TmuxServer, run_dmux: RunDmux, start_watcher: Callable[[], RunningWatcher],
) -> None:
    watcher = start_watcher()

    for host in ("tcp://[::1", "tcp://[zz]:1"):
        result = run_dmux("ls", env={"DOCKER_HOST": host})

        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("dmux: cannot use this Docker engine setting")
        assert result.stderr.count("\n") == 1

    assert watcher.process.poll() is None
    assert run_dmux("ls").returncode == 0
