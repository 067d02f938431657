"""dmux service install: the systemd user unit, written once, never over the user's edits."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dmux_async.errors import UserError
from dmux_async.service_unit import (
    UNIT_NAME,
    edited,
    exec_word,
    install,
    instance_of,
    render,
    unit_dir,
)

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib" / "systemd" / UNIT_NAME


def parsed(text: str) -> configparser.ConfigParser:
    """The unit as sections and keys (systemd's syntax is close enough to INI for this)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def fake_dmux(folder: Path) -> Path:
    path = folder / "my bin" / "dmux"
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_the_unit_has_what_systemd_needs() -> None:
    unit = parsed(render("/opt/dmux/bin/dmux"))

    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Service"]["ExecStart"] == "/opt/dmux/bin/dmux -L %i watch --log-format json"
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Service"]["RestartSec"] == "5s"
    assert unit["Service"]["RestartPreventExitStatus"] == "1"
    assert unit["Install"]["WantedBy"] == "default.target"
    assert "%i" in unit["Unit"]["Description"]
    assert "TMUX" not in render("/x")  # it needs no $TMUX: -L %i names the server


def test_contrib_copy_is_what_dmux_writes_for_a_pipx_install() -> None:
    assert CONTRIB.read_text() == render("%h/.local/bin/dmux")
    assert not edited(CONTRIB.read_text())


def test_the_hash_line_tells_an_edit() -> None:
    text = render("/usr/bin/dmux")

    assert not edited(text)
    assert edited(text.replace("RestartSec=5s", "RestartSec=1s"))
    assert edited(text + "# mine\n")
    assert edited(text.partition("\n")[2])  # hash line removed


@pytest.mark.parametrize(("path", "word"), [
    ("/usr/bin/dmux", "/usr/bin/dmux"),
    ("/home/a b/dmux", '"/home/a b/dmux"'),
    ("/opt/100%/dmux", "/opt/100%%/dmux"),
    ('/x/"q"/dmux', '"/x/\\"q\\"/dmux"'),
])
def test_exec_word_quotes_for_systemd(path: str, word: str) -> None:
    assert exec_word(path) == word


def test_install_creates_the_folder_and_is_idempotent(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "config")}

    first = install(environ, "/usr/bin/dmux", "default", force=False)
    written = first.path.stat().st_mtime_ns
    again = install(environ, "/usr/bin/dmux", "default", force=False)

    assert first.path == tmp_path / "config" / "systemd" / "user" / UNIT_NAME
    assert (first.action, again.action) == ("installed", "unchanged")
    assert first.path.stat().st_mtime_ns == written
    assert first.path.read_text() == render("/usr/bin/dmux")
    assert "systemctl --user enable --now dmux-watch@default.service" in first.report()


def test_install_updates_an_unedited_unit(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}
    install(environ, "/old/dmux", "default", force=False)

    done = install(environ, "/new/dmux", "default", force=False)

    assert done.action == "updated"
    assert "ExecStart=/new/dmux " in done.path.read_text()


def test_install_refuses_to_overwrite_an_edited_unit(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}
    path = install(environ, "/usr/bin/dmux", "default", force=False).path
    mine = path.read_text().replace("RestartSec=5s", "RestartSec=30s")
    path.write_text(mine)

    with pytest.raises(UserError, match=r"was edited since dmux wrote it.*--force"):
        install(environ, "/usr/bin/dmux", "default", force=False)

    assert path.read_text() == mine
    assert install(environ, "/usr/bin/dmux", "default", force=True).action == "updated"
    assert path.read_text() == render("/usr/bin/dmux")


def test_a_unit_written_by_hand_is_never_replaced_silently(tmp_path: Path) -> None:
    folder = unit_dir({"XDG_CONFIG_HOME": str(tmp_path)})
    folder.mkdir(parents=True)
    (folder / UNIT_NAME).write_text("[Service]\nExecStart=/bin/true\n")

    with pytest.raises(UserError):
        install({"XDG_CONFIG_HOME": str(tmp_path)}, "/usr/bin/dmux", "default", force=False)


def test_unit_dir_defaults_to_home_config() -> None:
    assert unit_dir({"HOME": "/home/u"}) == Path("/home/u/.config/systemd/user")


def test_the_instance_is_the_servers_dash_l_name(tmp_path: Path) -> None:
    environ = {"TMUX_TMPDIR": str(tmp_path)}
    folder = tmp_path / f"tmux-{os.getuid()}"

    assert instance_of(environ, None, None) == "default"
    assert instance_of(environ, "work-2", None) == "work-2"
    assert instance_of({**environ, "TMUX": f"{folder}/inner,1,0"}, None, None) == "inner"

    with pytest.raises(UserError, match="-L NAME"):
        instance_of(environ, None, "/elsewhere/sock")

    with pytest.raises(UserError, match="systemd instance"):
        instance_of(environ, "a b", None)


def test_the_command_prints_the_lines_to_run(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    env.pop("TMUX", None)

    done = subprocess.run([sys.executable, "-m", "dmux_async", "-L", "work", "service",
                           "install"], capture_output=True, text=True, env=env, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"installed {tmp_path / 'cfg' / 'systemd' / 'user' / UNIT_NAME}",
        "to start it now and at each login, run:",
        "  systemctl --user daemon-reload && systemctl --user enable --now "
        "dmux-watch@work.service",
    ]
    unit = parsed((tmp_path / "cfg" / "systemd" / "user" / UNIT_NAME).read_text())
    assert Path(unit["Service"]["ExecStart"].split()[0]).is_absolute()


def test_systemd_analyze_verifies_an_instance(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")

    if analyze is None:
        pytest.skip("no systemd-analyze here: the configparser checks above stand in for it")

    units = tmp_path / "units"
    runtime = tmp_path / "runtime"
    units.mkdir()
    runtime.mkdir(mode=0o700)
    instance = units / "dmux-watch@default.service"
    instance.write_text(render(exec_word(str(fake_dmux(tmp_path)))))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([analyze, "verify", "--user", str(instance)], capture_output=True,
                              text=True, env=env, check=False, timeout=60)

    done = verify()
    assert (done.returncode, done.stderr) == (0, ""), done.stderr

    instance.write_text(render(str(tmp_path / "missing" / "dmux")))  # it does check
    assert verify().returncode != 0
