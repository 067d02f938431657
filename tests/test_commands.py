"""dmux's commands end to end: the real CLI, a real Docker engine, a private tmux server.

Every command runs in a child process with ``DMUX_NO_WATCHER=1`` (the in-process path) and
private settings and runtime folders. Containers dmux makes carry the private server's
socket in their ``dmux.tmux`` label, so the ``tmux_server`` fixture removes them; anything
else a test makes (a saved image, an unlabelled container) has its own finalizer.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import RunDmux, TmuxServer

pytestmark = pytest.mark.integration

T = TypeVar("T")
Result = subprocess.CompletedProcess[str]

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done"
EXITS_SOON = ["sh", "-c", "sleep 1"]
PANE_FORMAT = "#{pane_id}\t#{@dmux-container}\t#{pane_dead}"
SCHEMA = {"name", "id", "image", "state", "pane", "session", "created", "auto_pause"}


# -- waiting, Docker, and what a failed command must look like ---------------------------------


def wait_for(check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout

    while True:
        result = check()

        if result:
            return result

        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")

        time.sleep(0.05)


def docker_run(*args: str) -> Result:
    return subprocess.run(
        ["docker", *args], check=False, capture_output=True, text=True, timeout=60
    )


def docker(*args: str) -> str:
    done = docker_run(*args)
    assert done.returncode == 0, f"docker {' '.join(args)} failed: {done.stderr.strip()}"
    return done.stdout.strip()


def inspect(name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(docker("inspect", name))
    return found[0]


def status(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Status}}", name)


def exists(name: str) -> bool:
    return docker_run("inspect", name).returncode == 0


def read_count(name: str) -> int:
    """The counter of the demo loop; waits out the instant the file is being rewritten."""

    def read() -> str:
        text = docker("exec", name, "cat", "/tmp/count")
        return text if text.isdigit() else ""

    return int(wait_for(read, f"a count in {name}:/tmp/count"))


def one_line_error(done: Result, code: int) -> str:
    """Assert a failure with ``code`` and one ``dmux:`` line on stderr; return that line."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, f"exit {done.returncode}, wanted {code}: {done.stderr!r}"
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dmux: "), done.stderr
    assert done.stdout == ""
    return lines[0]


# -- the harness: one private tmux server, the dmux command, and what they show ------------------


@dataclass(frozen=True)
class Made:
    """A container made by ``dmux init``, and the pane that showed it at once."""

    name: str
    id: str
    pane: str


@dataclass(frozen=True)
class World:
    """Everything a failed command must leave as it found it."""

    panes: list[str]
    windows: list[str]
    containers: list[str]


class Dmux:
    """The ``dmux`` command on one private tmux server, and ways to look at the result."""

    def __init__(
        self, run_dmux: RunDmux, tmux: TmuxServer, image: str, home: Path
    ) -> None:
        self.run_dmux = run_dmux
        self.tmux = tmux
        self.image = image
        self.home = home
        self.suffix = tmux.name.rsplit("-", 1)[-1]
        self.main_pane = tmux.out("display-message", "-p", "-t", "main:0.0", "#{pane_id}")

    def unique(self, base: str) -> str:
        """A container or image name no other test run uses (Docker's names are global)."""
        return f"{base}-{self.suffix}"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """No watcher, and private folders so no user settings or runtime files count."""
        return {
            "DMUX_NO_WATCHER": "1",
            "XDG_RUNTIME_DIR": str(self.home),
            "XDG_CONFIG_HOME": str(self.home),
            **(extra or {}),
        }

    def run(self, *args: str, pane: str | None = None, env: dict[str, str] | None = None) -> Result:
        return self.run_dmux(*args, pane=pane, env=self.env(env))

    def ok(self, *args: str, pane: str | None = None, env: dict[str, str] | None = None) -> str:
        """Run a command that must succeed quietly; return its stdout."""
        done = self.run(*args, pane=pane, env=env)
        assert done.returncode == 0, f"dmux {' '.join(args)}: {done.stderr.strip()}"
        assert done.stderr == ""
        return done.stdout.strip()

    def fail(
        self, code: int, *args: str, pane: str | None = None, env: dict[str, str] | None = None
    ) -> str:
        """Run a command that must fail with ``code``; return its one-line message."""
        return one_line_error(self.run(*args, pane=pane, env=env), code)

    def raw(
        self,
        *argv: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        wrapper: Sequence[str] = (),
        code: str | None = None,
    ) -> Result:
        """Run dmux with exactly ``argv`` (no implied ``-L``), outside tmux unless ``env`` says."""
        full = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        full.update(self.env(env))
        program = ["-c", code] if code else ["-m", "dmux_async"]
        return subprocess.run(
            [*wrapper, sys.executable, *program, *argv],
            check=False,
            capture_output=True,
            text=True,
            env=full,
            cwd=cwd,
            timeout=60,
        )

    def init(
        self,
        base: str,
        *options: str,
        command: Sequence[str] = (),
        image: str | None = None,
        pane: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Made:
        """``dmux init`` from the main pane (or ``pane``), named after ``base``."""
        name = self.unique(base)
        argv = ["init", "-i", image or self.image, "-n", name, *options]

        if command:
            argv += ["--", *command]

        assert self.ok(*argv, pane=pane or self.main_pane, env=env) == name
        container_id = str(inspect(name)["Id"])
        (shown,) = self.panes_showing(container_id)
        return Made(name, container_id, shown)

    def start_json(self, *args: str) -> dict[str, Any]:
        """``dmux start --json`` from the main pane, for one container: its one report."""
        reports: list[dict[str, Any]] = json.loads(
            self.ok("start", *args, "--json", pane=self.main_pane)
        )
        (report,) = reports
        return report

    def panes(self) -> list[tuple[str, str, bool]]:
        """Every pane: its id, the container it is tagged with, and whether it is dead."""
        listed = self.tmux.out("list-panes", "-a", "-F", PANE_FORMAT).splitlines()
        fields = (line.split("\t") for line in listed)
        return [(pane, container, dead == "1") for pane, container, dead in fields]

    def panes_showing(self, container_id: str) -> list[str]:
        return [p for p, c, dead in self.panes() if c == container_id and not dead]

    def active_pane(self) -> str:
        return self.tmux.out("display-message", "-p", "-t", "main", "#{pane_id}")

    def pane_field(self, pane: str, field: str) -> str:
        return self.tmux.out("display-message", "-p", "-t", pane, f"#{{{field}}}")

    def containers(self) -> list[str]:
        label = f"label=dmux.tmux={self.tmux.socket_path}"
        return sorted(docker("ps", "-aq", "--no-trunc", "--filter", label).split())

    def world(self) -> World:
        windows = self.tmux.out("list-windows", "-a", "-F", "#{session_name}:#{window_index}")
        return World(
            sorted(p for p, _, _ in self.panes()), windows.splitlines(), self.containers()
        )

    def ls(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.ok("ls", "--json"))
        return rows

    def record(self, name: str) -> dict[str, Any]:
        (row,) = [r for r in self.ls() if r["name"] == name]
        return row

    def new_session(self, name: str) -> str:
        """Another session on the same server; returns its pane."""
        return self.tmux.out("new-session", "-d", "-s", name, "-P", "-F", "#{pane_id}")


@pytest.fixture
def dmux(
    run_dmux: RunDmux, tmux_server: TmuxServer, test_image: str, tmp_path: Path
) -> Iterator[Dmux]:
    home = tmp_path / "home"
    home.mkdir()
    yield Dmux(run_dmux, tmux_server, test_image, home)
    shutil.rmtree(f"{tmux_server.socket_path}.dmux", ignore_errors=True)  # dmux's lock folder


@pytest.fixture
def marker() -> Iterator[Path]:
    """A host file that only an injected shell command would create."""
    path = Path(f"/tmp/PWNED-{uuid.uuid4().hex}")
    yield path
    path.unlink(missing_ok=True)


def remove_afterwards(request: pytest.FixtureRequest, *args: str) -> None:
    """Run ``docker *args`` when the test ends, whatever happened."""

    def cleanup() -> None:
        docker_run(*args)

    request.addfinalizer(cleanup)


def tricky(marker: Path) -> str:
    """A value that shells, tmux formats and command lists would all interpret."""
    return (
        f"a;b && touch {marker} $(touch {marker}) `touch {marker}` "
        f"'single' \"double\" #{{session_name}} #(touch {marker}) %1 \\ ; kill-server\n"
        "second line"
    )


def exited(name: str) -> bool:
    return status(name) == "exited"


# -- the demo: freeze, thaw, save, reuse --------------------------------------------------------


PAUSED_FOR = 1.5


@pytest.mark.timeout(300)  # a dozen commands and a docker commit: slow on a loaded machine
def test_demo_freeze_resume_save_and_reuse(dmux: Dmux, request: pytest.FixtureRequest) -> None:
    saved = f"dmux-test/saved-{dmux.suffix}:1"
    remove_afterwards(request, "image", "rm", "-f", saved)
    box = dmux.init("demo", command=["sh", "-c", COUNTER])
    started_at = inspect(box.name)["State"]["StartedAt"]
    wait_for(lambda: read_count(box.name) >= 5, "the counter to reach 5")

    before = read_count(box.name)
    counted_from = time.monotonic()
    assert dmux.ok("stop", box.name) == box.name
    assert status(box.name) == "paused"
    assert dmux.panes_showing(box.id) == []
    assert box.pane not in [p for p, _, _ in dmux.panes()]
    assert dmux.record(box.name)["state"] == "paused"

    time.sleep(PAUSED_FOR)  # the measurement itself: the counter must not move meanwhile
    assert dmux.ok("start", box.name, pane=dmux.main_pane) == box.name
    after = read_count(box.name)
    running = time.monotonic() - counted_from - PAUSED_FOR

    assert len(dmux.panes_showing(box.id)) == 1
    assert dmux.record(box.name)["state"] == "attached"
    assert inspect(box.name)["State"]["StartedAt"] == started_at  # thawed, not restarted
    assert before <= after <= before + running * 10 + 3

    image_id = dmux.ok("save", box.name, saved)
    assert image_id == docker("image", "inspect", "-f", "{{.Id}}", saved)
    assert status(box.name) == "running"
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", saved))
    assert not labels.get("dmux.name")  # blanked: copies must not pass for the original

    copy = dmux.init("copy", image=saved, command=["sleep", "600"])
    assert read_count(copy.name) >= after  # the saved filesystem came along
    assert {(r["name"], r["state"]) for r in dmux.ls()} == {
        (box.name, "attached"),
        (copy.name, "attached"),
    }

    assert dmux.ok("delete", "--force", box.name) == box.name  # its counter file changed
    assert dmux.ok("delete", copy.name) == copy.name
    assert dmux.containers() == []
    assert [c for _, c, _ in dmux.panes() if c] == []


# -- init ---------------------------------------------------------------------------------------


def test_init_generates_a_name_and_prints_it(dmux: Dmux) -> None:
    name = dmux.ok("init", "-i", dmux.image, pane=dmux.main_pane)

    assert re.fullmatch(r"[a-z]+-[a-z]+(-\d+)?", name)
    info = inspect(name)
    assert info["State"]["Status"] == "running"
    assert info["Config"]["Tty"] is True
    assert info["Config"]["OpenStdin"] is True
    assert info["Config"]["Labels"] == {
        "dmux.name": name,
        "dmux.tmux": dmux.tmux.socket_path,
        "dmux.auto-pause": "1",
    }

    (pane,) = dmux.panes_showing(info["Id"])
    assert dmux.pane_field(pane, "@dmux-name") == name
    assert dmux.pane_field(pane, "pane_title") == name
    started = dmux.pane_field(pane, "pane_start_command")
    assert "attach --detach-keys" in started  # after replaying what it printed
    assert info["Id"] in started and "ctrl-],ctrl-]" in started


def test_init_json_reports_what_it_made(dmux: Dmux) -> None:
    name = dmux.unique("json")

    out = dmux.ok("init", "-i", dmux.image, "-n", name, "--json", pane=dmux.main_pane)

    report = json.loads(out)
    assert report == {
        "name": name,
        "id": inspect(name)["Id"],
        "action": "created",
        "pane": dmux.panes_showing(report["id"])[0],
        "detail": "running",
    }


def test_init_passes_env_values_verbatim(dmux: Dmux, marker: Path) -> None:
    value = tricky(marker)
    absent = f"DMUX_TEST_ABSENT_{dmux.suffix}"

    box = dmux.init(
        "env",
        "-e", f"TRICKY={value}",
        "-e", "FROM_CALLER",
        "-e", absent,
        env={"FROM_CALLER": "the caller's value"},
    )

    env = inspect(box.name)["Config"]["Env"]
    assert f"TRICKY={value}" in env
    assert "FROM_CALLER=the caller's value" in env
    assert "TERM=xterm-256color" in env
    assert not [e for e in env if e.startswith(absent)]
    inside = docker_run("exec", box.name, "sh", "-c", 'printf %s "$TRICKY"')
    assert inside.stdout == value
    assert docker_run("exec", box.name, "test", "-e", str(marker)).returncode == 1
    assert not marker.exists()
    assert dmux.tmux.out("list-sessions", "-F", "#{session_name}") == "main"


def test_init_passes_command_arguments_verbatim(dmux: Dmux, marker: Path) -> None:
    argv = ["sh", "-c", "sleep 600", tricky(marker)]  # the last word is $0, never run

    box = dmux.init("argv", command=argv)

    assert inspect(box.name)["Config"]["Cmd"] == argv
    assert status(box.name) == "running"
    assert not marker.exists()
    assert docker_run("exec", box.name, "test", "-e", str(marker)).returncode == 1


def test_init_rejects_a_name_with_shell_syntax(dmux: Dmux, marker: Path) -> None:
    before = dmux.world()

    message = dmux.fail(
        1, "init", "-i", dmux.image, "-n", f"x;touch {marker}", pane=dmux.main_pane
    )

    assert "invalid container name" in message
    assert not marker.exists()
    assert dmux.world() == before


def test_init_bind_mounts_a_host_folder(dmux: Dmux, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host")

    box = dmux.init("mount", "-v", f"{shared}:/mnt/host")

    assert docker("exec", box.name, "cat", "/mnt/host/hello.txt") == "from the host"
    docker("exec", box.name, "sh", "-c", "echo from the container > /mnt/host/back.txt")
    assert (shared / "back.txt").read_text() == "from the container\n"


def test_init_resolves_a_relative_mount_against_the_callers_folder(
    dmux: Dmux, tmp_path: Path
) -> None:
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "file").write_text("relative")
    name = dmux.unique("relative")

    done = dmux.raw(
        "-L", dmux.tmux.name, "init", "-t", "main", "-i", dmux.image, "-n", name,
        "-v", "./here:/mnt/here",
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert docker("exec", name, "cat", "/mnt/here/file") == "relative"


def test_init_sets_the_working_directory(dmux: Dmux) -> None:
    box = dmux.init("workdir", "-w", "/srv/work")

    assert inspect(box.name)["Config"]["WorkingDir"] == "/srv/work"
    assert docker("exec", box.name, "pwd") == "/srv/work"


def geometry(dmux: Dmux, pane: str) -> tuple[int, int, int]:
    """``(window index, left, top)`` of a pane."""
    shown = dmux.tmux.out(
        "display-message", "-p", "-t", pane, "#{window_index} #{pane_left} #{pane_top}"
    )
    window, left, top = (int(f) for f in shown.split())
    return window, left, top


@pytest.mark.parametrize("split", ["right", "below"])
def test_init_splits_the_current_pane(dmux: Dmux, split: str) -> None:
    box = dmux.init(f"split-{split}", "--split", split)

    window, left, top = geometry(dmux, box.pane)
    main_window, main_left, main_top = geometry(dmux, dmux.main_pane)
    assert dmux.world().windows == ["main:0"]
    assert window == main_window

    if split == "right":
        assert (left > main_left, top) == (True, main_top)
    else:
        assert (top > main_top, left) == (True, main_left)


def test_init_in_a_new_window(dmux: Dmux) -> None:
    box = dmux.init("window", "--split", "window")

    assert dmux.world().windows == ["main:0", "main:1"]
    assert geometry(dmux, box.pane)[0] == 1
    assert dmux.tmux.out("list-panes", "-t", "main:0", "-F", "#{pane_id}") == dmux.main_pane


def test_init_rejects_an_unknown_split(dmux: Dmux) -> None:
    before = dmux.world()

    message = dmux.fail(
        1, "init", "-i", dmux.image, "--split", "diagonal", pane=dmux.main_pane
    )

    assert "--split" in message
    assert "must be one of right, below, window" in message
    assert "diagonal" in message
    assert dmux.world() == before


# -- bad input leaves nothing behind ------------------------------------------------------------


def test_init_of_a_missing_image(dmux: Dmux) -> None:
    """A registry that refuses at once: the pull fails fast and offline."""
    before = dmux.world()
    image = f"localhost:1/dmux-test/missing-{dmux.suffix}:1"

    message = dmux.fail(1, "init", "-i", image, pane=dmux.main_pane)

    assert image in message
    assert "pull" in message
    assert dmux.world() == before
    assert docker_run("image", "inspect", image).returncode != 0


def test_init_of_a_command_missing_from_the_image(dmux: Dmux) -> None:
    before = dmux.world()

    message = dmux.fail(
        1, "init", "-i", dmux.image, "--", "/no/such/program", pane=dmux.main_pane
    )

    assert "could not start" in message
    assert "/no/such/program" in message
    assert dmux.world() == before


def test_init_with_a_target_that_does_not_exist(dmux: Dmux) -> None:
    before = dmux.world()

    message = dmux.fail(1, "init", "-i", dmux.image, "-t", "nosuch:7")

    assert "can't find" in message
    assert dmux.world() == before


def unreachable_host(kind: str, tmp_path: Path) -> str:
    if kind == "missing socket":
        return f"unix:///tmp/nonexistent-{uuid.uuid4().hex}.sock"

    if kind == "regular file":
        (tmp_path / "file").write_text("")
        return f"unix://{tmp_path / 'file'}"

    if kind == "directory":
        return f"unix://{tmp_path}"

    return "tcp://127.0.0.1:1"


@pytest.mark.parametrize("kind", ["missing socket", "regular file", "directory", "closed port"])
def test_init_with_the_engine_unreachable(dmux: Dmux, tmp_path: Path, kind: str) -> None:
    before = dmux.world()
    env = {"DOCKER_HOST": unreachable_host(kind, tmp_path)}

    message = dmux.fail(2, "init", "-i", dmux.image, pane=dmux.main_pane, env=env)

    assert "cannot reach the Docker engine" in message
    assert dmux.world() == before


def test_ls_with_the_engine_unreachable(dmux: Dmux) -> None:
    env = {"DOCKER_HOST": f"unix:///tmp/nonexistent-{uuid.uuid4().hex}.sock"}

    assert "cannot reach the Docker engine" in dmux.fail(2, "ls", env=env)


def test_engine_socket_not_permitted(dmux: Dmux, tmp_path: Path) -> None:
    """Root passes any file mode, so a root run drops CAP_DAC_OVERRIDE with setpriv."""
    wrapper: list[str] = []

    if os.getuid() == 0:
        setpriv = shutil.which("setpriv")

        if setpriv is None:
            pytest.skip("running as root and no setpriv to drop CAP_DAC_OVERRIDE")

        drop = "-dac_override,-dac_read_search"
        wrapper = [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}"]

    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen()
        path.chmod(0)

        done = dmux.raw(
            "-L", dmux.tmux.name, "ls", env={"DOCKER_HOST": f"unix://{path}"}, wrapper=wrapper
        )

    message = one_line_error(done, 2)
    assert "permission denied" in message


def test_docker_host_without_a_known_scheme(dmux: Dmux) -> None:
    message = dmux.fail(1, "ls", env={"DOCKER_HOST": "bogus://somewhere"})

    assert "bogus://somewhere" in message
    assert "DOCKER_HOST" in message


def test_init_without_a_tmux_server(dmux: Dmux) -> None:
    nobody = f"dmux-test-none-{uuid.uuid4().hex[:10]}"
    socket_path = Path(dmux.tmux.socket_path).with_name(nobody)

    done = dmux.raw("-L", nobody, "init", "-i", dmux.image, "-t", "main")

    assert f"no tmux server is running at {socket_path}" in one_line_error(done, 2)
    assert not socket_path.exists()
    assert not socket_path.with_name(f"{nobody}.dmux").exists()
    assert docker("ps", "-aq", "--filter", f"label=dmux.tmux={socket_path}") == ""


def test_containers_outlive_their_tmux_server(dmux: Dmux) -> None:
    """No server means no panes: ls, stop and delete still work; showing needs a server."""
    box = dmux.init("survivor")
    gone = dmux.init("gone")

    dmux.tmux.out("kill-server")

    record = wait_for(lambda: dmux.record(box.name), "dmux ls")
    assert (record["state"], record["pane"]) == ("detached", None)
    assert dmux.ok("stop", box.name) == box.name
    assert status(box.name) == "paused"
    assert dmux.ok("delete", gone.name) == gone.name
    assert not exists(gone.name)

    message = dmux.fail(2, "start", box.name, "-t", "main")
    assert f"no tmux server is running at {dmux.tmux.socket_path}" in message
    assert status(box.name) == "paused"


def test_init_outside_tmux_without_a_target(dmux: Dmux) -> None:
    before = dmux.world()

    message = dmux.fail(1, "init", "-i", dmux.image)

    assert message.startswith("dmux: not inside tmux")
    assert "-t" in message
    assert dmux.world() == before


def test_start_outside_tmux_leaves_a_paused_container_paused(dmux: Dmux) -> None:
    box = dmux.init("outside")
    dmux.ok("stop", box.name)
    before = dmux.world()

    assert "not inside tmux" in dmux.fail(1, "start", box.name)

    assert status(box.name) == "paused"
    assert dmux.world() == before


def test_tmux_environment_naming_a_dead_server(dmux: Dmux) -> None:
    dead = f"/tmp/dead-{uuid.uuid4().hex}"
    env = {"TMUX": f"{dead},123,0", "TMUX_PANE": "%0"}

    done = dmux.raw("init", "-i", dmux.image, env=env)

    assert f"no tmux server is running at {dead}" in one_line_error(done, 2)
    assert dmux.raw("ls", "-q", env=env).returncode == 0  # no server, so no panes to list
    assert not Path(dead).exists()
    assert not Path(f"{dead}.dmux").exists()


@pytest.mark.parametrize("verb", ["stop", "start", "delete", "save"])
def test_unknown_name(dmux: Dmux, verb: str) -> None:
    name = dmux.unique("nosuch")
    before = dmux.world()
    image = [f"dmux-test/never-{dmux.suffix}:1"] if verb == "save" else []

    message = dmux.fail(1, verb, name, *image, pane=dmux.main_pane)

    assert f"no dmux container is named {name!r}" in message
    assert "dmux ls" in message
    assert dmux.world() == before


def test_empty_name_is_not_taken_for_no_name(dmux: Dmux) -> None:
    """``dmux stop "$NAME"`` with an empty variable must not pick a container by itself."""
    box = dmux.init("empty")

    dmux.fail(1, "stop", "", pane=dmux.main_pane)

    assert status(box.name) == "running"


def labelled(dmux: Dmux, name: str) -> str:
    """A container carrying dmux's labels, made without a pane; returns its id."""
    return docker(
        "create", "--name", name,
        "--label", f"dmux.name={name}",
        "--label", f"dmux.tmux={dmux.tmux.socket_path}",
        dmux.image,
    )


def two_sharing_a_first_digit(dmux: Dmux) -> tuple[str, dict[str, str]]:
    """Make containers until two ids start alike (17 at most); returns that digit and them."""
    made: dict[str, str] = {}

    for i in range(17):
        name = dmux.unique(f"prefix{i}")
        made[name] = labelled(dmux, name)
        first = made[name][0]
        alike = {n: cid for n, cid in made.items() if cid[0] == first}

        if len(alike) == 2:
            return first, alike

    raise AssertionError("17 hex ids cannot all start differently")


def test_ambiguous_id_prefix(dmux: Dmux) -> None:
    digit, alike = two_sharing_a_first_digit(dmux)
    first, second = sorted(alike)

    message = dmux.fail(1, "delete", digit)

    assert f"id prefix {digit!r} is ambiguous: it matches {first}, {second}" in message
    assert exists(first)
    assert exists(second)
    assert dmux.ok("delete", alike[second][:12]) == second
    assert exists(first)
    assert not exists(second)


def test_name_already_taken_by_a_dmux_container(dmux: Dmux) -> None:
    box = dmux.init("taken")
    before = dmux.world()

    message = dmux.fail(1, "init", "-i", dmux.image, "-n", box.name, pane=dmux.main_pane)

    assert f"the name {box.name!r} is already taken" in message
    assert dmux.world() == before
    assert inspect(box.name)["Id"] == box.id
    assert status(box.name) == "running"
    assert dmux.panes_showing(box.id) == [box.pane]


def test_name_already_taken_outside_dmux(dmux: Dmux, request: pytest.FixtureRequest) -> None:
    name = dmux.unique("foreign")
    remove_afterwards(request, "rm", "-f", name)
    docker("create", "--name", name, dmux.image)
    before = dmux.world()

    message = dmux.fail(1, "init", "-i", dmux.image, "-n", name, pane=dmux.main_pane)

    assert "already taken" in message
    assert dmux.world() == before
    assert status(name) == "created"


ALWAYS_LAST = (
    "import secrets; secrets.randbelow = lambda n: n - 1; "
    "from dmux_async.client import main; raise SystemExit(main())"
)


def test_generated_name_avoids_names_taken_outside_dmux(
    dmux: Dmux, request: pytest.FixtureRequest
) -> None:
    """With the random draw pinned to zesty-zebra, a container by that name must be skipped."""
    remove_afterwards(request, "rm", "-f", "zesty-zebra")

    if docker_run("create", "--name", "zesty-zebra", dmux.image).returncode != 0:
        pytest.skip("a container named zesty-zebra already exists on this engine")

    done = dmux.raw(
        "-L", dmux.tmux.name, "init", "-t", "main", "-i", dmux.image, code=ALWAYS_LAST
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("zesty-zebra-")
    assert status("zesty-zebra") == "created"


# -- changes behind dmux's back -----------------------------------------------------------------


def test_container_removed_while_its_pane_is_open(dmux: Dmux) -> None:
    box = dmux.init("removed")
    dmux.tmux.out("set-option", "-p", "-t", box.pane, "remain-on-exit", "on")

    docker("rm", "-f", box.name)
    wait_for(lambda: dmux.pane_field(box.pane, "pane_dead") == "1", "the pane to die")

    message = dmux.fail(1, "stop", box.name)
    assert f"no dmux container is named {box.name!r}" in message
    assert "no container to stop here" in dmux.fail(1, "stop", pane=box.pane)
    assert dmux.ls() == []
    assert dmux.ok("ls").splitlines() == ["NAME  IMAGE  STATE  PANE  SESSION  AGE"]


def test_pane_closed_behind_dmuxs_back(dmux: Dmux) -> None:
    box = dmux.init("orphan")

    dmux.tmux.out("kill-pane", "-t", box.pane)

    record = wait_for(lambda: dmux.record(box.name), "dmux ls")
    assert (record["state"], record["pane"], record["session"]) == ("detached", None, None)
    assert status(box.name) == "running"
    assert dmux.ok("stop", box.name) == box.name
    assert status(box.name) == "paused"
    assert dmux.record(box.name)["state"] == "paused"


def test_start_attaches_to_a_detached_container(dmux: Dmux) -> None:
    box = dmux.init("detached")
    dmux.tmux.out("kill-pane", "-t", box.pane)

    report = dmux.start_json(box.name)

    assert report["action"] == "resumed"
    assert dmux.panes_showing(box.id) == [report["pane"]]
    assert " attach --detach-keys" in dmux.pane_field(report["pane"], "pane_start_command")
    assert dmux.record(box.name)["state"] == "attached"


def test_stop_of_an_exited_container_points_at_start(dmux: Dmux) -> None:
    box = dmux.init("exited", command=EXITS_SOON)
    wait_for(lambda: exited(box.name), "the container to exit")

    message = dmux.fail(1, "stop", box.name)

    assert f"{box.name} is not running (exited)" in message
    assert f"`dmux start {box.name}`" in message
    assert status(box.name) == "exited"


def test_save_of_a_removed_container(dmux: Dmux) -> None:
    box = dmux.init("unsaved")
    image = f"dmux-test/unsaved-{dmux.suffix}:1"
    docker("rm", "-f", box.name)

    message = dmux.fail(1, "save", box.name, image)

    assert box.name in message
    assert docker_run("image", "inspect", image).returncode != 0


def test_save_rejects_an_invalid_image_name(dmux: Dmux) -> None:
    message = dmux.fail(1, "save", "whatever", "Not An Image")

    assert "invalid image name 'Not An Image'" in message


@pytest.mark.parametrize("paused", [True, False], ids=["paused", "attached"])
def test_delete_removes_the_container_and_its_pane(dmux: Dmux, paused: bool) -> None:
    box = dmux.init("deleted")

    if paused:
        dmux.ok("stop", box.name)

    assert dmux.ok("delete", box.name) == box.name

    assert not exists(box.name)
    assert dmux.panes_showing(box.id) == []
    assert dmux.ls() == []


def test_two_starts_at_once_show_one_pane(dmux: Dmux) -> None:
    box = dmux.init("twice")
    dmux.ok("stop", box.name)

    def start(_: int) -> Result:
        return dmux.run("start", box.name, "--json", pane=dmux.main_pane)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(start, range(2)))

    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    actions = sorted(report["action"] for d in done for report in json.loads(d.stdout))
    assert actions == ["focused", "resumed"]
    assert len(dmux.panes_showing(box.id)) == 1
    assert status(box.name) == "running"


def test_stop_closes_the_pane_of_a_container_paused_outside_dmux(dmux: Dmux) -> None:
    box = dmux.init("frozen-by-hand")
    docker("pause", box.name)

    done = dmux.run("stop", box.name)

    assert done.returncode == 0, done.stderr
    assert status(box.name) == "paused"
    assert dmux.panes_showing(box.id) == []


def test_start_thaws_a_container_paused_outside_dmux(dmux: Dmux) -> None:
    box = dmux.init("thawed")
    docker("pause", box.name)

    assert dmux.ok("start", box.name, pane=dmux.main_pane) == box.name

    assert status(box.name) == "running"
    assert len(dmux.panes_showing(box.id)) == 1


# -- start ----------------------------------------------------------------------------------------


def test_start_focuses_the_pane_that_shows_it(dmux: Dmux) -> None:
    box = dmux.init("focus", "--split", "window")
    dmux.tmux.out("select-window", "-t", "main:0")
    dmux.tmux.out("select-pane", "-t", dmux.main_pane)
    before = dmux.world()

    report = dmux.start_json(box.name)

    assert (report["action"], report["pane"]) == ("focused", box.pane)
    assert dmux.active_pane() == box.pane
    assert dmux.world() == before


def test_start_runs_an_exited_container_again(dmux: Dmux) -> None:
    box = dmux.init("again", command=EXITS_SOON)
    wait_for(lambda: exited(box.name), "the container to exit")
    first_start = inspect(box.name)["State"]["StartedAt"]

    report = dmux.start_json(box.name)

    assert report["action"] == "restarted"
    assert inspect(box.name)["Id"] == box.id
    wait_for(
        lambda: inspect(box.name)["State"]["StartedAt"] != first_start, "a fresh StartedAt"
    )
    assert "attach --detach-keys" in dmux.pane_field(report["pane"], "pane_start_command")


def test_start_reports_a_restart_that_fails(dmux: Dmux, tmp_path: Path) -> None:
    """Like init, start must say when the container could not start, not claim success."""
    mounted = tmp_path / "mounted"
    mounted.write_text("a file")
    box = dmux.init("broken", "-v", f"{mounted}:/mnt/file", command=EXITS_SOON)
    wait_for(lambda: exited(box.name), "the container to exit")
    mounted.unlink()
    mounted.mkdir()  # a folder where the container expects a file: its next start fails

    message = dmux.fail(1, "start", box.name, pane=dmux.main_pane)

    assert f"{box.name} could not start" in message
    assert dmux.panes_showing(box.id) == []


def test_ls_json_and_quiet(dmux: Dmux) -> None:
    made_after = time.time() - 2
    frozen = dmux.init("frozen")
    kept = dmux.init("kept", "--no-auto-pause")
    dmux.ok("stop", frozen.name)

    rows = dmux.ls()

    assert [set(r) for r in rows] == [SCHEMA, SCHEMA]
    assert [r["name"] for r in rows] == [frozen.name, kept.name]  # oldest first
    first, second = rows
    assert first == {
        "name": frozen.name,
        "id": frozen.id,
        "image": dmux.image,
        "state": "paused",
        "pane": None,
        "session": None,
        "created": first["created"],
        "auto_pause": True,
    }
    assert made_after <= first["created"] <= second["created"] <= time.time() + 2
    assert (second["state"], second["pane"], second["session"]) == ("attached", kept.pane, "main")
    assert second["auto_pause"] is False
    assert dmux.ok("ls", "-q").splitlines() == [frozen.name, kept.name]

    table = dmux.ok("ls").splitlines()
    assert table[0].split() == ["NAME", "IMAGE", "STATE", "PANE", "SESSION", "AGE"]
    assert [line.split()[:3] for line in table[1:]] == [
        [frozen.name, dmux.image, "paused"],
        [kept.name, dmux.image, "attached"],
    ]


def test_ls_with_no_containers(dmux: Dmux) -> None:
    assert dmux.ls() == []
    assert dmux.ok("ls", "-q") == ""


# -- NAME omitted ---------------------------------------------------------------------------------


def test_stop_from_a_dmux_pane_stops_its_own_container(dmux: Dmux) -> None:
    mine = dmux.init("mine")
    other = dmux.init("other")

    assert dmux.ok("stop", pane=mine.pane) == mine.name

    assert status(mine.name) == "paused"
    assert status(other.name) == "running"


def test_without_a_name_the_only_candidate_in_the_session_is_picked(dmux: Dmux) -> None:
    here = dmux.init("here")
    elsewhere = dmux.init("elsewhere", pane=dmux.new_session("other"))

    assert dmux.ok("stop", pane=dmux.main_pane) == here.name
    assert status(here.name) == "paused"
    assert status(elsewhere.name) == "running"

    assert dmux.ok("start", pane=dmux.main_pane) == here.name
    assert status(here.name) == "running"


def test_without_a_name_two_candidates_are_listed(dmux: Dmux) -> None:
    one = dmux.init("one")
    two = dmux.init("two")

    message = dmux.fail(1, "stop", pane=dmux.main_pane)

    assert message == f"dmux: which container to stop? pass a NAME: {one.name}, {two.name}"
    assert status(one.name) == "running"
    assert status(two.name) == "running"


def test_delete_does_not_count_docker_made_folders_as_changes(dmux: Dmux, tmp_path: Path) -> None:
    """A working directory and mount points are made by Docker, not by the user's work."""
    box = dmux.init("plain", "-w", "/work/deep", "-v", f"{tmp_path}:/mnt/x")

    dmux.ok("delete", box.name)

    assert docker_run("inspect", box.name).returncode != 0


def test_delete_refuses_a_changed_filesystem_without_force(dmux: Dmux) -> None:
    box = dmux.init("worked", command=["sh", "-c", "echo kept > /tmp/work; exec sleep 1000"])
    wait_for(lambda: docker_run("diff", box.name).stdout.strip() != "", "the file written")

    message = dmux.fail(1, "delete", box.name)

    assert "/tmp/work" in message and f"dmux save {box.name}" in message
    assert docker_run("inspect", box.name).returncode == 0
    dmux.ok("delete", "--force", box.name)
    assert docker_run("inspect", box.name).returncode != 0


def test_a_resumed_pane_shows_every_line_the_thaw_printed(dmux: Dmux) -> None:
    """A thawed loop prints at once, before the attach connects: the pane catches up."""
    counting = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo n$i; sleep 1; done"]
    box = dmux.init("counting", command=counting)
    time.sleep(2.2)
    dmux.ok("stop", box.name)
    time.sleep(1.5)

    dmux.ok("start", box.name, pane=dmux.main_pane)
    time.sleep(2.5)

    pane = dmux.panes_showing(box.id)[0]
    shown = [int(w[1:]) for w in dmux.tmux.out("capture-pane", "-p", "-t", pane).split()
             if w.startswith("n") and w[1:].isdigit()]
    assert shown == list(range(1, len(shown) + 1)), shown
    assert len(shown) >= 5


def test_init_here_mounts_the_folder_at_its_own_path_and_starts_there(
    dmux: Dmux, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("from the host\n")
    name = dmux.unique("here")

    done = dmux.raw("-L", dmux.tmux.name, "init", "-i", dmux.image, "-n", name, "--here",
                    "--user", "-t", "main", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    info = inspect(name)
    assert info["Config"]["WorkingDir"] == str(tmp_path)
    assert info["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    assert any(m["Source"] == str(tmp_path) and m["Destination"] == str(tmp_path)
               for m in info["Mounts"])
    seen = docker_run("exec", name, "sh", "-c", "pwd; cat notes.txt; id -u")
    assert seen.stdout.split("\n")[:3] == [str(tmp_path), "from the host", str(os.getuid())]


def test_exec_opens_a_second_pane_on_the_same_container(dmux: Dmux) -> None:
    box = dmux.init("twice")

    dmux.ok("exec", box.name, "--", "sh", "-c", "echo second > /tmp/second; exec sleep 300",
            pane=dmux.main_pane)

    wait_for(lambda: docker_run("exec", box.name, "cat", "/tmp/second").stdout == "second\n",
             "the command run by exec")
    assert len(dmux.panes_showing(box.id)) == 2
    dmux.ok("stop", box.name)
    assert dmux.panes_showing(box.id) == []


def test_exec_of_a_paused_container_says_to_start_it(dmux: Dmux) -> None:
    box = dmux.init("frozen-exec")
    dmux.ok("stop", box.name)

    message = dmux.fail(1, "exec", box.name, pane=dmux.main_pane)

    assert f"dmux start {box.name}" in message
