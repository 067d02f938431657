"""contrib/dmux.tmux: the tmux plugin's key bindings, its watcher, and the menu it opens."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TmuxServer
from waiting import wait_until
from watchers import (
    answers,
    clean_env,
    docker,
    lock_pid,
    make_container,
    stop_pid,
    watch_paths,
)

from dmux_async.menu import Runner, display_menu
from dmux_async.roster import Entry

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "contrib" / "dmux.tmux"
RUNNER = ROOT / "contrib" / "scripts" / "run"


def test_menu_lists_the_containers_with_no_pane_and_all_of_them() -> None:
    entries = [Entry("a1", "paused"), Entry("b2", "attached"), Entry("c3", "exited")]
    argv = display_menu(entries, Runner("/s", "/dev/pts/1", "/r"), "%4")

    assert argv[:5] == ["display-menu", "-T", "#[align=centre] dmux start ", "-t", "%4"]
    assert argv[7:10] == ["a1 (paused)", "1", "run-shell -b \"/r /s /dev/pts/1 start a1 -t %4\""]
    assert argv[10:12] == ["c3 (exited)", "2"]
    assert argv[13:16] == ["", "all of them", "a"]
    assert "start --all -t %4" in argv[16]


def test_menu_items_quote_for_sh_and_both_format_expansions() -> None:
    runner = Runner("/tmp/a b", program="/x/it's #1 $HOME\\")
    command = runner.command(["start", "n"])
    assert command == "run-shell -b \"'/x/it'\\\"'\\\"'s ####1 \\$HOME\\\\' '/tmp/a b' '' start n\""


def test_without_a_runner_an_item_runs_dmux_and_shows_its_error() -> None:
    command = Runner("/s", dmux="/bin/dmux").command(["start", "n", "-t", "%1"])
    assert command == "run-shell \"/bin/dmux -S /s start n -t %1 2>&1 >/dev/null\""


@dataclass
class Plugin:
    server: TmuxServer
    dmux: Path
    log: Path
    loaded: bool = False

    def load(self) -> subprocess.CompletedProcess[str]:
        self.loaded = True
        return self.server.cmd("run-shell", str(PLUGIN))

    def key(self, key: str) -> str:
        return self.server.cmd("list-keys", "-T", "prefix", key).stdout.strip()


def write_dmux(folder: Path) -> Path:
    """A ``dmux`` that runs this worktree's code, for tmux to call."""
    path = folder / "dmux"
    path.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m dmux_async \"$@\"\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def plugin(tmux_server: TmuxServer, tmp_path: Path) -> Iterator[Plugin]:
    dmux = write_dmux(tmp_path)
    log = tmp_path / "watch.log"
    tmux_server.out("set-option", "-g", "@dmux-bin", str(dmux))
    tmux_server.out("set-option", "-g", "@dmux-watch-log", str(log))

    loaded = Plugin(tmux_server, dmux, log)
    yield loaded

    bin_set = tmux_server.out("show-option", "-gqv", "@dmux-bin")

    if loaded.loaded and bin_set == str(dmux):  # a watcher was started: wait for it, stop it
        wait_until(lambda: answers(watch_paths(tmux_server).socket), what="the watcher")
        pid = lock_pid(tmux_server)
        assert pid is not None
        assert tmux_server.name in Path(f"/proc/{pid}/cmdline").read_text()
        stop_pid(pid)


@pytest.mark.integration
def test_loading_binds_the_keys(plugin: Plugin) -> None:
    done = plugin.load()

    assert done.returncode == 0, done.stderr
    run = f"'{RUNNER}' #{{q:socket_path}} #{{q:client_name}}"
    assert f'run-shell -b "{run} init -t #{{q:pane_id}}"' in plugin.key("N")
    assert f'run-shell -b "{run} stop -t #{{q:pane_id}}"' in plugin.key("S")
    assert (f'run-shell -b "{run} menu -t #{{q:pane_id}} -c #{{q:client_name}} '
            f"--runner '{RUNNER}'\"") in plugin.key("R")
    delete = plugin.key("X")
    assert delete.startswith("bind-key -T prefix X if-shell -F \"#{@dmux-container}\"")
    assert "confirm-before -p \"dmux: delete #{@dmux-name}? (y/n)\"" in delete
    assert f'run-shell -b "{run} delete -t #{{q:pane_id}}"' in delete


@pytest.mark.integration
def test_key_options_set_before_loading_are_honoured(plugin: Plugin) -> None:
    plugin.server.out("set-option", "-g", "@dmux-key-stop", "M-s")
    plugin.server.out("set-option", "-g", "@dmux-key-delete", "none")
    plugin.server.out("set-option", "-g", "@dmux-image", "some/image:1")

    plugin.load()

    assert "stop -t #{q:pane_id}" in plugin.key("M-s")
    assert plugin.key("S") == ""
    assert plugin.key("X") == ""
    assert "init -t #{q:pane_id} -i 'some/image:1'\"" in plugin.key("N")


@pytest.mark.integration
def test_loading_starts_one_watcher_for_the_server(plugin: Plugin) -> None:
    plugin.load()
    socket = watch_paths(plugin.server).socket
    wait_until(lambda: answers(socket), what="the plugin's watcher to answer")
    first = lock_pid(plugin.server)

    plugin.load()  # once more, as a reloaded tmux.conf does

    assert first is not None and Path(f"/proc/{first}").exists()
    assert lock_pid(plugin.server) == first
    assert "already runs" not in plugin.log.read_text()
    assert "watcher_started" in plugin.log.read_text()


@pytest.mark.integration
def test_without_dmux_the_plugin_says_so(plugin: Plugin, tmp_path: Path) -> None:
    plugin.server.out("set-option", "-g", "@dmux-bin", str(tmp_path / "nowhere" / "dmux"))
    plugin.load()

    assert "stop -t" in plugin.key("S")  # bindings still made: @dmux-bin may be fixed later
    assert not answers(watch_paths(plugin.server).socket)


@dataclass
class Terminal:
    """An outer tmux server whose only pane is a client attached to the test's server."""

    outer: str
    server: TmuxServer

    def press(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.outer, "send-keys", "-t", "o", *keys], check=True,
                       env=clean_env())

    def screen(self) -> str:
        return subprocess.run(["tmux", "-L", self.outer, "capture-pane", "-p", "-t", "o"],
                              capture_output=True, text=True, check=True, env=clean_env()).stdout

    def shows(self, text: str) -> None:
        """Wait until ``text`` is on the screen; fail with the screen as it is."""
        try:
            wait_until(lambda: text in self.screen(), what=repr(text))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{self.screen()}") from None

    def press_until(self, text: str, *keys: str, tries: int = 3) -> None:
        """Press ``keys`` until ``text`` shows: a prompt or a menu can be closed at once by
        the outer terminal's late answer to a query, which reaches tmux as keys."""
        for _ in range(tries - 1):
            self.press(*keys)

            try:
                wait_until(lambda: text in self.screen(), timeout=5, what=repr(text))
                return
            except AssertionError:
                continue

        self.press(*keys)
        self.shows(text)

    @property
    def client(self) -> str:
        return self.server.out("list-clients", "-F", "#{client_name}")


@pytest.fixture
def terminal(tmux_server: TmuxServer) -> Iterator[Terminal]:
    outer = f"dmux-test-outer-{uuid.uuid4().hex[:8]}"
    attach = f"env -u TMUX tmux -L {tmux_server.name} attach -t main"
    subprocess.run(["tmux", "-L", outer, "-f", "/dev/null", "new-session", "-d", "-s", "o",
                    "-x", "160", "-y", "40", attach], check=True, env=clean_env())

    try:
        wait_until(lambda: tmux_server.out("list-clients") != "", what="the attached client")
        yield Terminal(outer, tmux_server)
    finally:
        socket = tmux_server.socket_path.rsplit("/", 1)[0] + f"/{outer}"
        subprocess.run(["tmux", "-L", outer, "kill-server"], check=False, env=clean_env())
        Path(socket).unlink(missing_ok=True)  # tmux 3.3 leaves it behind


def state(name: str) -> str:
    found = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", name],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() if found.returncode == 0 else "removed"


def became(name: str, wanted: str) -> Callable[[], bool]:
    return lambda: state(name) == wanted


@pytest.mark.integration
def test_the_keys_drive_dmux_from_a_terminal(
    plugin: Plugin, terminal: Terminal, test_image: str
) -> None:
    plugin.server.out("set-option", "-g", "@dmux-image", test_image)
    plugin.load()
    wait_until(lambda: answers(watch_paths(plugin.server).socket), what="the watcher")

    terminal.press("C-b", "N")
    wait_until(lambda: "@" not in _names(plugin.server), what="a new container's pane")
    name = _names(plugin.server)
    wait_until(became(name, "running"))

    terminal.press("C-b", "S")
    wait_until(became(name, "paused"), what=f"{name} paused by the stop key")

    # This pane shows none now: the error goes to the status line.
    terminal.press_until("dmux: no container to stop here", "C-b", "S")

    terminal.press_until(f"{name} (paused)", "C-b", "R")
    terminal.press("1")
    wait_until(became(name, "running"), what=f"{name} resumed from the menu")

    wait_until(lambda: _names(plugin.server) == name, what=f"{name}'s pane to be active")
    terminal.press_until(f"dmux: delete {name}? (y/n)", "C-b", "X")
    terminal.press("y")
    wait_until(became(name, "removed"), what=f"{name} removed by the delete key")


def _names(server: TmuxServer) -> str:
    """The ``@dmux-name`` of the active pane, or ``@`` when it has none."""
    return server.out("display-message", "-p", "#{?@dmux-name,#{@dmux-name},@}")


@pytest.mark.integration
def test_a_menu_item_passes_odd_values_intact(
    plugin: Plugin, terminal: Terminal, test_image: str, tmp_path: Path
) -> None:
    name = make_container(plugin.server, test_image, "paused")
    odd = tmp_path / "it's #S $HOME dir"
    odd.mkdir()
    record = tmp_path / "args"
    runner = odd / "run"
    runner.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{record}'\n")
    runner.chmod(0o755)
    pane = plugin.server.out("display-message", "-p", "-t", "main", "#{pane_id}")

    menu = subprocess.Popen(
        [str(plugin.dmux), "-L", plugin.server.name, "menu", "-t", pane, "-c", terminal.client,
         "--runner", str(runner)], env=clean_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )

    try:
        terminal.shows(f"{name} (paused)")
        terminal.press("1")
        wait_until(record.exists, what="the runner to run")
        _, errors = menu.communicate(timeout=15)
        assert menu.returncode == 0, errors
    finally:
        if menu.poll() is None:
            menu.kill()
            menu.communicate()

    assert record.read_text().splitlines() == [
        plugin.server.socket_path, terminal.client, "start", name, "-t", pane]
    assert state(name) == "paused"
    docker("rm", "-f", name)
