"""A tmux server's containers as ``dmux ls --json`` lists them, read the quickest way.

A running watcher has the Docker and tmux libraries loaded and answers in milliseconds, so
the listing is asked of it first; the callers make it themselves when none answers.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dmux_async.client import hand_over
from dmux_async.errors import DmuxError

if TYPE_CHECKING:
    from dmux_async.commands import Row


@dataclass(frozen=True)
class Entry:
    """One container: its name and the state ``dmux ls`` shows."""

    name: str
    state: str


def from_watcher(
    environ: Mapping[str, str], cwd: str, socket_name: str | None, socket_path: str | None
) -> list[Entry] | None:
    """The watcher's listing; ``None`` when no watcher answers (then list them here)."""
    server = ["-S", socket_path] if socket_path else (["-L", socket_name] if socket_name else [])
    reply = hand_over([*server, "ls", "--json"], environ, cwd)

    if reply is None:
        return None

    if reply.get("code") != 0:
        message = str(reply.get("stderr", "")).strip().removeprefix("dmux: ")
        raise DmuxError(message or "the watcher could not list the containers")

    return _entries(json.loads(str(reply.get("stdout", ""))))


def from_rows(rows: "list[Row]") -> list[Entry]:
    """The same listing, from rows made in this process."""
    return [Entry(row.container.name, row.state.value) for row in rows]


def _entries(records: object) -> list[Entry]:
    if not isinstance(records, list):
        raise DmuxError("the watcher's listing is not a JSON list")

    return [Entry(str(r["name"]), str(r["state"])) for r in records if isinstance(r, dict)]
