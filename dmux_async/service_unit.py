"""``dmux service install``: a systemd user unit that runs ``dmux watch`` for a tmux server.

(Not to be confused with :mod:`dmux_async.watch.service`, the watcher's command socket.)

The unit is a template, ``dmux-watch@.service``: its instance names the tmux server as
``-L`` does, so ``dmux-watch@default`` watches the default server. The file dmux writes
carries a hash of the rest of its text. A file whose text no longer matches its hash was
edited by its user, and dmux does not replace it unless told to.
"""

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dmux_async.errors import UserError
from dmux_async.place import find_place, tmux_dir

UNIT_NAME = "dmux-watch@.service"
HASH_PREFIX = "# dmux-unit-sha256: "
_INSTANCE = re.compile(r"[A-Za-z0-9_.:][A-Za-z0-9_.:-]*")

_BODY = """\
# Written by `dmux service install`, which replaces it on the next install unless this
# text was edited. Prefer `systemctl --user edit dmux-watch@.service` for local changes.
[Unit]
Description=dmux watcher for tmux server %i: pauses containers whose pane is gone

[Service]
Type=simple
ExecStart={exec_start} -L %i watch --log-format json
Restart=on-failure
RestartSec=5s
# Exit 1 is a user error, such as another watcher already running for this server.
RestartPreventExitStatus=1
TimeoutStopSec=20s

[Install]
WantedBy=default.target
"""


@dataclass(frozen=True)
class Installed:
    """What ``install`` did, and where."""

    path: Path
    action: str  # "installed", "updated" or "unchanged"
    instance: str

    def report(self) -> str:
        unit = f"dmux-watch@{self.instance}.service"
        return (f"{self.action} {self.path}\nto start it now and at each login, run:\n"
                f"  systemctl --user daemon-reload && systemctl --user enable --now {unit}")


def render(exec_start: str) -> str:
    """The unit's text, with ``exec_start`` (systemd syntax) as the program to run."""
    body = _BODY.format(exec_start=exec_start)
    return f"{HASH_PREFIX}{_digest(body)}\n{body}"


def exec_word(path: str) -> str:
    """A file path as one word of a systemd ``ExecStart=`` line."""
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"' if re.search(r"[\s\"'\\]", path) else escaped


def edited(text: str) -> bool:
    """Whether a unit's text differs from the text its hash line was made for."""
    first, _, body = text.partition("\n")
    return not first.startswith(HASH_PREFIX) or first.removeprefix(HASH_PREFIX) != _digest(body)


def unit_dir(environ: Mapping[str, str]) -> Path:
    """Where systemd looks for a user's own units."""
    config = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(config).expanduser() / "systemd" / "user"


def instance_of(
    environ: Mapping[str, str], socket_name: str | None, socket_path: str | None
) -> str:
    """The ``-L`` name of the tmux server these options pick, as a unit instance."""
    place = find_place(environ, socket_name, socket_path)
    folder = os.path.realpath(tmux_dir(environ))
    name = Path(place.socket_path).name

    if os.path.dirname(place.socket_path) != folder:
        raise UserError(f"the service names its tmux server with -L, and {place.socket_path} "
                        f"is not in {folder}: pick the server with -L NAME")

    if not _INSTANCE.fullmatch(name):
        raise UserError(f"tmux server name {name!r} cannot be a systemd instance: "
                        "use letters, digits, '_', '.', ':' and '-'")

    return name


def install(environ: Mapping[str, str], exec_start: str, instance: str,
            force: bool) -> Installed:
    """Write the unit file, unless it holds someone's edits and ``force`` is not set."""
    path = unit_dir(environ) / UNIT_NAME
    text = render(exec_start)

    try:
        current: str | None = path.read_text()
    except FileNotFoundError:
        current = None

    if current == text:
        return Installed(path, "unchanged", instance)

    if current is not None and edited(current) and not force:
        raise UserError(f"{path} was edited since dmux wrote it: keep it, or replace it "
                        "with `dmux service install --force`")

    _write(path, text)
    return Installed(path, "installed" if current is None else "updated", instance)


def _write(path: Path, text: str) -> None:
    """Replace the file whole, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()
