"""Settings: defaults < file < environment < flags, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from conftest import RunDmux, TmuxServer

from dmux_async import settings
from dmux_async.panes import Split
from dmux_async.settings import Layer, Settings, SettingsError, merge

FILE = Path("/home/u/.config/dmux/config.toml")
SOURCE = f"file {FILE}"


def file(text: str) -> Layer:
    return settings.file_layer(FILE, text)


def error_of(text: str) -> str:
    with pytest.raises(SettingsError) as caught:
        file(text)

    return str(caught.value)


# Merge precedence


def test_defaults() -> None:
    merged = merge()

    assert merged == Settings()
    assert (merged.image, merged.split, merged.auto_pause) == ("ubuntu", "right", True)
    assert (merged.command, merged.volumes, merged.env, merged.workdir) == ((), (), (), None)
    assert set(merged.sources.values()) == {"default"}


def test_file_over_defaults() -> None:
    merged = merge(file('image = "alpine"\nsplit = "below"\nworkdir = "/src"\n'))

    assert (merged.image, merged.split, merged.workdir) == ("alpine", "below", "/src")
    assert merged.sources["image"] == SOURCE
    assert merged.sources["split"] == SOURCE
    assert merged.sources["auto_pause"] == "default"


def test_environment_over_file() -> None:
    merged = merge(
        file('image = "alpine"\nauto_pause = true\nvolumes = ["/a:/a"]\n'),
        settings.environ_layer({"DMUX_IMAGE": "busybox", "DMUX_AUTO_PAUSE": "0",
                                "DMUX_VOLUMES": "/b:/b '/c d:/c'"}),
    )

    assert merged.image == "busybox"
    assert merged.auto_pause is False
    assert merged.volumes == ("/b:/b", "/c d:/c")  # a variable replaces the file's list
    assert merged.sources["image"] == "env DMUX_IMAGE"
    assert merged.sources["auto_pause"] == "env DMUX_AUTO_PAUSE"
    assert merged.sources["volumes"] == "env DMUX_VOLUMES"


def test_flags_over_environment() -> None:
    merged = merge(
        file('image = "alpine"\nsplit = "below"\ncommand = ["bash", "-l"]\n'),
        settings.environ_layer({"DMUX_IMAGE": "busybox", "DMUX_AUTO_PAUSE": "no"}),
        settings.flag_layer(image="debian", split="window", auto_pause=True,
                            command=["sh", "-c", "true"]),
    )

    assert (merged.image, merged.split, merged.auto_pause) == ("debian", "window", True)
    assert merged.command == ("sh", "-c", "true")
    assert {merged.sources[k] for k in ("image", "split", "auto_pause", "command")} == {"flag"}


def test_flags_add_volumes_and_env() -> None:
    merged = merge(
        file('volumes = ["/a:/a"]\nenv = ["A=1"]\n'),
        settings.environ_layer({"DMUX_ENV": "B=2 'C=two words'"}),
        settings.flag_layer(volumes=["/x:/x"], env=("D=4",)),
    )

    assert merged.volumes == ("/a:/a", "/x:/x")
    assert merged.env == ("B=2", "C=two words", "D=4")
    assert merged.sources["volumes"] == f"{SOURCE} + flag"
    assert merged.sources["env"] == "env DMUX_ENV + flag"


def test_flags_alone_set_lists() -> None:
    merged = merge(settings.flag_layer(volumes=["/x:/x"]))

    assert merged.volumes == ("/x:/x",)
    assert merged.sources["volumes"] == "flag"


def test_flags_not_given_change_nothing() -> None:
    below = file('image = "alpine"\ncommand = ["bash"]\nvolumes = ["/a:/a"]\n')
    given = settings.flag_layer(image=None, command=[], volumes=None, env=[], split=None)

    assert merge(below, given) == merge(below)


def test_empty_variables_clear_lists_and_workdir() -> None:
    merged = merge(
        file('command = ["bash"]\nvolumes = ["/a:/a"]\nworkdir = "/src"\n'),
        settings.environ_layer({"DMUX_COMMAND": "", "DMUX_VOLUMES": "", "DMUX_WORKDIR": ""}),
    )

    assert (merged.command, merged.volumes, merged.workdir) == ((), (), None)
    assert merged.sources["workdir"] == "env DMUX_WORKDIR"


def test_command_variable_is_split_like_a_shell_line() -> None:
    layer = settings.environ_layer({"DMUX_COMMAND": "sh -c 'echo \"hi there\"'"})

    assert layer.values["command"] == ("sh", "-c", 'echo "hi there"')


@pytest.mark.parametrize(
    ("word", "meaning"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("False", False), ("no", False)],
)
def test_auto_pause_words(word: str, meaning: bool) -> None:
    assert settings.environ_layer({"DMUX_AUTO_PAUSE": word}).values["auto_pause"] is meaning


def test_splits_are_the_panes_splits() -> None:
    assert tuple(s.value for s in Split) == settings.SPLITS


# Where the file is


def test_config_path_follows_xdg() -> None:
    assert settings.config_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path(
        "/x/dmux/config.toml")
    assert settings.config_path({"HOME": "/h"}) == Path("/h/.config/dmux/config.toml")
    assert settings.config_path({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.config/dmux/config.toml")


def test_load_without_a_file(tmp_path: Path) -> None:
    loaded = settings.load({"XDG_CONFIG_HOME": str(tmp_path), "DMUX_SPLIT": "window"})

    assert loaded.split == "window"
    assert loaded.file == str(tmp_path / "dmux" / "config.toml")
    assert loaded.file_found is False


def test_load_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dmux" / "config.toml"
    path.parent.mkdir()
    path.write_text('image = "alpine"\n')
    loaded = settings.load({"XDG_CONFIG_HOME": str(tmp_path)}, settings.flag_layer(env=["A=1"]))

    assert (loaded.image, loaded.env, loaded.file_found) == ("alpine", ("A=1",), True)
    assert loaded.sources["image"] == f"file {path}"


def test_as_text_is_toml_with_sources() -> None:
    shown = settings.as_text(merge(file('env = ["A=1"]\n')))
    lines = shown.splitlines()

    assert lines[0] == "# settings file:  (not found)"
    assert lines[4] == f'env = ["A=1"]      # {SOURCE}'
    assert lines[5] == 'workdir = ""       # default'
    assert "command = []" in shown
    assert tomllib.loads(shown)["env"] == ["A=1"]


def test_as_json() -> None:
    shown = json.loads(settings.as_json(merge(file("auto_pause = false\n"))))

    assert shown["settings"]["auto_pause"] == {"value": False, "source": SOURCE}
    assert shown["settings"]["workdir"] == {"value": None, "source": "default"}


# Bad input: one line, file:line: key: problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('image = "a"\nimgae = "b"\n',
         '2: imgae: unknown key; did you mean "image"? '
         "the keys are image, command, volumes, env, workdir, split, auto_pause"),
        ("\n[docker]\nhost = 1\n",
         "2: docker: unknown key; "
         "the keys are image, command, volumes, env, workdir, split, auto_pause"),
        ("# dmux\n  image = 3\n", "2: image: must be a string, not a number (3)"),
        ('image = ""\n', '1: image: must not be empty: name an image, like "ubuntu"'),
        ('auto_pause = "no"\n', '1: auto_pause: must be true or false, not a string ("no")'),
        ('command = "bash -l"\n',
         '1: command: must be an array of strings, like ["a", "b"], not a string ("bash -l")'),
        ("volumes = [\n  1,\n]\n", "1: volumes: item 1 must be a string, not a number (1)"),
        ('env = ["A=1", "=2"]\n',
         "1: env: item 2 (\"=2\") must be KEY=VALUE, or KEY to pass on the caller's value"),
        ('split = "left"\n', '1: split: must be one of right, below, window, not "left"'),
        ("workdir = 1979-05-27\n",
         "1: workdir: must be a string, not a date or time (1979-05-27)"),
        ("image = 'a'\n'split' = true\n", "2: split: must be a string, not a boolean (true)"),
    ],
)
def test_bad_values(text: str, message: str) -> None:
    assert error_of(text) == f"{FILE}:{message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('image = "a"\nsplit "b"\n',
         "2: invalid TOML: Expected '=' after a key in a key/value pair (column 7)"),
        ("image = 1\nimage = 2\n", "2: invalid TOML: Cannot overwrite a value (column 10)"),
        ('image = "a"\nvolumes = ["/a:/a",\n',
         "2: invalid TOML: Invalid value (at the end of the file)"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert error_of(text) == f"{FILE}:{message}"


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    folder = tmp_path / "config.toml"
    folder.mkdir()

    with pytest.raises(SettingsError, match=r"config\.toml: cannot read it: Is a directory$"):
        settings.read_file(folder)

    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'image = "a"\nworkdir = "/caf\xe9"\n')

    with pytest.raises(SettingsError) as caught:
        settings.read_file(latin)

    assert str(caught.value) == f"{latin}:2: not UTF-8 text; save it as UTF-8"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DMUX_SPLIT", "left", 'DMUX_SPLIT: must be one of right, below, window, not "left"'),
        ("DMUX_IMAGE", "", 'DMUX_IMAGE: must not be empty: name an image, like "ubuntu"'),
        ("DMUX_AUTO_PAUSE", "maybe",
         'DMUX_AUTO_PAUSE: must be one of 1, 0, true, false, yes, no, not "maybe"'),
        ("DMUX_COMMAND", "sh -c 'x",
         "DMUX_COMMAND: cannot split it like a shell command line: No closing quotation"),
        ("DMUX_ENV", "A=1 =2",
         "DMUX_ENV: item 2 (\"=2\") must be KEY=VALUE, or KEY to pass on the caller's value"),
    ],
)
def test_bad_variables(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings.environ_layer({name: value})

    assert str(caught.value) == message


def test_bad_flags() -> None:
    with pytest.raises(SettingsError, match=r'^--split: must be one of right, below, window, '
                                            r'not "up"$'):
        settings.flag_layer(split="up")


# Through the command line, against a real engine and tmux server


def inspect(name: str, template: str) -> str:
    done = subprocess.run(["docker", "inspect", "-f", template, name],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.integration
def test_init_and_config_use_the_settings(
    tmux_server: TmuxServer, run_dmux: RunDmux, test_image: str, tmp_path: Path
) -> None:
    path = tmp_path / "dmux" / "config.toml"
    path.parent.mkdir()
    path.write_text(f'image = "{test_image}"\nenv = ["FROM_FILE=1"]\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path), "DMUX_AUTO_PAUSE": "0"}
    pane = tmux_server.out("display-message", "-p", "-t", "main", "#{pane_id}")

    made = run_dmux("init", "-e", "FROM_FLAG=2", env=env, pane=pane)
    assert made.returncode == 0, made.stderr
    name = made.stdout.strip()

    assert inspect(name, "{{.Config.Image}}") == test_image
    assert {"FROM_FILE=1", "FROM_FLAG=2"} <= set(json.loads(inspect(name, "{{json .Config.Env}}")))
    assert inspect(name, '{{index .Config.Labels "dmux.auto-pause"}}') == "0"

    shown = run_dmux("config", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]

    assert f"# settings file: {path}" in lines
    assert f'image = "{test_image}" # file {path}' in lines
    assert f'env = ["FROM_FILE=1"] # file {path}' in lines
    assert "auto_pause = false # env DMUX_AUTO_PAUSE" in lines
    assert 'split = "right" # default' in lines


@pytest.mark.integration
def test_a_bad_file_stops_init_with_one_line(
    tmux_server: TmuxServer, run_dmux: RunDmux, tmp_path: Path
) -> None:
    path = tmp_path / "dmux" / "config.toml"
    path.parent.mkdir()
    path.write_text('image = "a"\nauto_pause = "no"\n')
    pane = tmux_server.out("display-message", "-p", "-t", "main", "#{pane_id}")

    for args in (["init"], ["config"], ["config", "--json"]):
        failed = run_dmux(*args, env={"XDG_CONFIG_HOME": str(tmp_path)}, pane=pane)

        assert failed.returncode == 1
        assert failed.stdout == ""
        assert failed.stderr == (
            f'dmux: {path}:2: auto_pause: must be true or false, not a string ("no")\n')

    assert tmux_server.out("list-panes", "-a", "-F", "#{pane_id}") == pane


@pytest.mark.parametrize(
    ("spec", "resolved"),
    [
        ("~/.cache:/root/.cache", "/home/u/.cache:/root/.cache"),
        ("~:/home", "/home/u:/home"),
        ("./src:/src", "/work/p/src:/src"),
        ("../x:/x:ro", "/work/x:/x:ro"),
        ("~user/x:/x", "~user/x:/x"),
        ("named:/data", "named:/data"),
    ],
)
def test_volume_paths_resolve_for_the_caller(spec: str, resolved: str) -> None:
    from dmux_async.cli.base import Invocation, absolute_volume

    assert absolute_volume(spec, Invocation({"HOME": "/home/u"}, "/work/p")) == resolved
