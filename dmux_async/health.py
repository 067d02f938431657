"""``dmux doctor``: whether each part dmux relies on answers, and what to do when one does not.

The parts: the Docker engine, the tmux server, the hooks a watcher sets on that server,
and the watcher itself. Each check catches its own failure, so one report always has a
line for every part asked about.
"""

import json
import shlex
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import anyio

from dmux_async.engine import connect
from dmux_async.errors import DmuxError
from dmux_async.panes import Tmux
from dmux_async.place import Place
from dmux_async.watch.doorbell import CHANNEL, HOOK_INDEX, HOOKS
from dmux_async.watch.supervisor import WatchPaths

PING_TIMEOUT = 2.0


class Part(StrEnum):
    """What ``dmux doctor --only`` can name, in the order the report lists them."""

    ENGINE = "engine"
    TMUX = "tmux"
    HOOKS = "hooks"
    WATCHER = "watcher"


@dataclass(frozen=True)
class Check:
    """One line of the report: a part, whether it is fine, what was found or what to do."""

    part: Part
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<5} {self.part.value:<8} {self.detail}"


def diagnose(place: Place, environ: Mapping[str, str], parts: Sequence[Part]) -> list[Check]:
    """Check each part asked about, in the report's order."""
    checks: dict[Part, Callable[[Place, Mapping[str, str]], Awaitable[Check]]] = {
        Part.ENGINE: _engine, Part.TMUX: _tmux, Part.HOOKS: _hooks, Part.WATCHER: _watcher,
    }

    async def run_all() -> list[Check]:
        return [await check(place, environ) for part, check in checks.items() if part in parts]

    return anyio.run(run_all)


def report(checks: Sequence[Check]) -> str:
    return "\n".join(check.line() for check in checks)


async def _engine(place: Place, environ: Mapping[str, str]) -> Check:
    try:
        async with connect(place.socket_path, environ) as engine:
            version = await engine.version()
    except DmuxError as exc:
        return Check(Part.ENGINE, False, str(exc))

    return Check(Part.ENGINE, True, f"Docker {version} answers at {engine.endpoint.host}")


async def _tmux(place: Place, environ: Mapping[str, str]) -> Check:
    try:
        lines = await Tmux(place.socket_path).arun("display-message", "-p", "#{version}")
    except DmuxError as exc:
        return Check(Part.TMUX, False, str(exc))

    version = lines[0] if lines else "?"
    return Check(Part.TMUX, True, f"tmux {version} server answers at {place.socket_path}")


async def _hooks(place: Place, environ: Mapping[str, str]) -> Check:
    commands: list[str] = []

    for hook in HOOKS:
        commands += ["show-hooks", "-g", hook, ";"]

    try:
        lines = set(await Tmux(place.socket_path).arun(*commands[:-1]))
    except DmuxError as exc:
        return Check(Part.HOOKS, False, f"cannot read the hooks: {exc}")

    missing = [h for h in HOOKS if f"{h}[{HOOK_INDEX}] wait-for -S {CHANNEL}" not in lines]

    if missing:
        return Check(Part.HOOKS, False, f"not set ({', '.join(missing)}): a running watcher "
                     f"sets them; start one ({_watch_command(place)})")

    return Check(Part.HOOKS, True, f"{len(HOOKS)} hooks ring the watcher (wait-for {CHANNEL})")


async def _watcher(place: Place, environ: Mapping[str, str]) -> Check:
    paths = WatchPaths.of(place.socket_path)

    if not await anyio.to_thread.run_sync(_answers, paths.socket):
        return Check(Part.WATCHER, False, f"none answers at {paths.socket}: start one "
                     f"({_watch_command(place)}), or `dmux service install`")

    return Check(Part.WATCHER, True, f"pid {_owner(paths.lock)} answers at {paths.socket}")


def _answers(path: Path) -> bool:
    """Whether a watcher replies on ``path``; an empty request is declined, running nothing."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(PING_TIMEOUT)
            conn.connect(str(path))
            conn.sendall(b"{}\n")
            conn.shutdown(socket.SHUT_WR)
            reply = json.loads(conn.recv(4096) or b"null")
    except (OSError, ValueError):
        return False

    return isinstance(reply, dict)


def _owner(lock: Path) -> str:
    try:
        return lock.read_text().strip() or "?"
    except OSError:
        return "?"


def _watch_command(place: Place) -> str:
    return f"`dmux -S {shlex.quote(place.socket_path)} watch`"
