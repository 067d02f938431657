"""The settings ``dmux init`` runs with, and where each one came from.

Four layers, each over the one before: built-in defaults, the settings file
(``$XDG_CONFIG_HOME/dmux/config.toml``), ``DMUX_*`` environment variables, and the flags of
``dmux init``. A variable or flag replaces what is below it, except ``-v`` and ``-e``: they
add to the volumes and variables in force, as ``docker run -v/-e`` add to an image's.

Nothing here reads ``os.environ``: a watcher may run a command for a caller whose
environment is not its own, so the caller's is passed in.
"""

import difflib
import json
import os
import pwd
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dmux_async.errors import UserError

Value = str | bool | tuple[str, ...] | None

KEYS = ("image", "command", "volumes", "env", "workdir", "split", "auto_pause")
SPLITS = ("right", "below", "window")
ADDED_BY_FLAGS = frozenset({"volumes", "env"})
FLAGS = {
    "image": "--image",
    "command": "COMMAND",
    "volumes": "--volume",
    "env": "--env",
    "workdir": "--workdir",
    "split": "--split",
    "auto_pause": "--auto-pause",
}
DEFAULT = "default"
FLAG = "flag"
_LISTS = frozenset({"command", "volumes", "env"})
_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_TOML_ERROR = re.compile(r"^(?P<problem>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)"
                         r"|end of document)\)$", re.DOTALL)


class SettingsError(UserError):
    """A settings file, variable or flag that dmux cannot use."""


class _Problem(Exception):
    """What is wrong with one value; the caller adds where the value came from."""


@dataclass(frozen=True)
class Settings:
    """The values ``dmux init`` uses, each with its source in ``sources``.

    A source is ``default``, ``file PATH``, ``env DMUX_X`` or ``flag``; a list that flags
    added to reads ``file PATH + flag``. ``file`` is the settings file looked for.
    """

    image: str = "ubuntu"
    command: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str | None = None
    split: str = "right"
    auto_pause: bool = True
    sources: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(KEYS, DEFAULT))
    file: str = ""
    file_found: bool = False

    def value(self, key: str) -> Value:
        found: Value = getattr(self, key)
        return found


@dataclass(frozen=True)
class Layer:
    """Some settings, checked, with the source of each; ``adds`` lists add to those below."""

    values: Mapping[str, Value]
    sources: Mapping[str, str]
    adds: frozenset[str] = frozenset()

    @classmethod
    def of(cls, source: str, values: Mapping[str, Value],
           adds: frozenset[str] = frozenset()) -> "Layer":
        return cls(values, dict.fromkeys(values, source), adds)


def merge(*layers: Layer) -> Settings:
    """Lay ``layers`` over the defaults, each over the ones before it."""
    base = Settings()
    values: dict[str, Any] = {key: base.value(key) for key in KEYS}
    sources = dict(base.sources)

    for layer in layers:
        for key, value in layer.values.items():
            if key in layer.adds and sources[key] != DEFAULT:
                assert isinstance(value, tuple)
                values[key] = (*values[key], *value)
                sources[key] = f"{sources[key]} + {layer.sources[key]}"
            else:
                values[key] = value
                sources[key] = layer.sources[key]

    return Settings(**values, sources=sources)


def load(environ: Mapping[str, str], flags: Layer | None = None) -> Settings:
    """The settings in force for a caller with ``environ``: file, variables, then ``flags``."""
    path = config_path(environ)
    file = read_file(path)
    layers = [layer for layer in (file, environ_layer(environ), flags) if layer is not None]
    return replace(merge(*layers), file=str(path), file_found=file is not None)


def config_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/dmux/config.toml``; a relative XDG_CONFIG_HOME is ignored (XDG)."""
    base = environ.get("XDG_CONFIG_HOME", "")

    if not os.path.isabs(base):
        home = environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
        base = os.path.join(home, ".config")

    return Path(base) / "dmux" / "config.toml"


def read_file(path: Path) -> Layer | None:
    """The settings file's layer; ``None`` when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read it: {exc.strerror or exc}") from None

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SettingsError(f"{path}:{line}: not UTF-8 text; save it as UTF-8") from None

    return file_layer(path, text)


def file_layer(path: Path, text: str) -> Layer:
    """The settings in a file's ``text``, checked; ``path`` names it in sources and errors."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(_syntax_error(path, text, exc)) from None

    values = {}

    for key, raw in table.items():
        try:
            values[key] = _checked(key, raw)
        except _Problem as problem:
            line = _line_of(text, key)
            where = f"{path}:{line}" if line else str(path)
            raise SettingsError(f"{where}: {key}: {problem}") from None

    return Layer.of(f"file {path}", values)


def environ_layer(environ: Mapping[str, str]) -> Layer:
    """The settings the ``DMUX_*`` variables set; a variable set to "" counts as set."""
    values: dict[str, Value] = {}
    sources = {}

    for key in KEYS:
        name = env_name(key)

        if name not in environ:
            continue

        try:
            values[key] = _checked(key, _from_text(key, environ[name]))
        except _Problem as problem:
            raise SettingsError(f"{name}: {problem}") from None

        sources[key] = f"env {name}"

    return Layer(values, sources)


def flag_layer(
    *,
    image: str | None = None,
    command: Sequence[str] | None = None,
    volumes: Sequence[str] | None = None,
    env: Sequence[str] | None = None,
    workdir: str | None = None,
    split: str | None = None,
    auto_pause: bool | None = None,
) -> Layer:
    """The settings ``dmux init``'s flags give; ``None`` (or no items) is "not given"."""
    given: dict[str, object] = {
        "image": image, "command": command, "volumes": volumes, "env": env,
        "workdir": workdir, "split": split, "auto_pause": auto_pause,
    }
    values = {}

    for key, raw in given.items():
        if raw is None or (key in _LISTS and not raw):
            continue

        try:
            values[key] = _checked(key, list(raw) if isinstance(raw, tuple) else raw)
        except _Problem as problem:
            raise SettingsError(f"{FLAGS[key]}: {problem}") from None

    return Layer.of(FLAG, values, ADDED_BY_FLAGS)


def env_name(key: str) -> str:
    return f"DMUX_{key.upper()}"


def as_text(settings: Settings) -> str:
    """One ``key = value  # source`` line per setting: readable, and valid TOML."""
    found = "" if settings.file_found else " (not found)"
    rows = [(f"{key} = {_toml(settings.value(key))}", settings.sources[key]) for key in KEYS]
    width = max(len(left) for left, _ in rows)
    lines = [f"{left.ljust(width)}  # {source}" for left, source in rows]
    return "\n".join([f"# settings file: {settings.file}{found}", *lines])


def as_json(settings: Settings) -> str:
    shown = {key: {"value": settings.value(key), "source": settings.sources[key]} for key in KEYS}
    return json.dumps({"file": settings.file, "file_found": settings.file_found,
                       "settings": shown})


def _from_text(key: str, text: str) -> object:
    """A variable's text as the value it stands for: lists are split like a shell line."""
    if key in _LISTS:
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise _Problem(f"cannot split it like a shell command line: {exc}") from None

    if key == "auto_pause":
        if text.strip().lower() not in _BOOLEANS:
            raise _Problem(f"must be one of 1, 0, true, false, yes, no, not {json.dumps(text)}")

        return _BOOLEANS[text.strip().lower()]

    return text


def _checked(key: str, raw: object) -> Value:
    """``raw`` as the value of ``key``, or a ``_Problem`` that says what to write instead."""
    checks: dict[str, Callable[[object], Value]] = {
        "image": _image, "command": _strings, "volumes": _strings, "env": _env_pairs,
        "workdir": _workdir, "split": _split, "auto_pause": _boolean,
    }

    if key not in checks:
        raise _Problem(_unknown(key))

    return checks[key](raw)


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    return f"unknown key; {hint}the keys are {', '.join(KEYS)}"


def _string(raw: object) -> str:
    if not isinstance(raw, str):
        raise _Problem(f"must be a string, not {_describe(raw)}")

    return raw


def _image(raw: object) -> str:
    image = _string(raw)

    if not image:
        raise _Problem('must not be empty: name an image, like "ubuntu"')

    return image


def _workdir(raw: object) -> str | None:
    """An empty workdir is none: the image's own."""
    return _string(raw) or None


def _split(raw: object) -> str:
    split = _string(raw)

    if split not in SPLITS:
        raise _Problem(f"must be one of {', '.join(SPLITS)}, not {json.dumps(split)}")

    return split


def _boolean(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise _Problem(f"must be true or false, not {_describe(raw)}")

    return raw


def _strings(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise _Problem(f'must be an array of strings, like ["a", "b"], not {_describe(raw)}')

    for number, item in enumerate(raw, 1):
        if not isinstance(item, str):
            raise _Problem(f"item {number} must be a string, not {_describe(item)}")

    return tuple(raw)


def _env_pairs(raw: object) -> tuple[str, ...]:
    """``KEY=VALUE`` items, or ``KEY`` to pass on the caller's value, as in ``docker run -e``."""
    pairs = _strings(raw)

    for number, pair in enumerate(pairs, 1):
        if not pair.partition("=")[0]:
            raise _Problem(f"item {number} ({json.dumps(pair)}) must be KEY=VALUE, or KEY "
                           f"to pass on the caller's value")

    return pairs


def _describe(value: object) -> str:
    """A TOML value's type in words, with the value when it is short."""
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"

    if isinstance(value, int | float):
        return f"a number ({value})"

    if isinstance(value, str):
        return f"a string ({json.dumps(value)})"

    if isinstance(value, list):
        return "an array"

    if isinstance(value, dict):
        return "a table"

    return f"a date or time ({value})"


def _syntax_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's message as ``PATH:LINE: invalid TOML: PROBLEM (column N)``."""
    found = _TOML_ERROR.match(str(exc))

    if found is None:
        return f"{path}: invalid TOML: {exc}"

    if found["line"] is None:
        last = max(1, len(text.splitlines()))
        return f"{path}:{last}: invalid TOML: {found['problem']} (at the end of the file)"

    return f"{path}:{found['line']}: invalid TOML: {found['problem']} (column {found['column']})"


def _line_of(text: str, key: str) -> int | None:
    """The line that sets ``key`` (bare or quoted), or opens a table of that name."""
    name = f"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
    pattern = re.compile(rf"^[ \t]*(?:{name}[ \t]*[=.]|\[\[?[ \t]*{name}[ \t]*[\].])", re.M)
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def _toml(value: Value) -> str:
    if isinstance(value, bool):
        return json.dumps(value)

    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"

    return json.dumps(value or "", ensure_ascii=False)
