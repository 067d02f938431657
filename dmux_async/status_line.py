"""``dmux status``: a count of one tmux server's containers, short enough for a status line.

The counts come from the engine alone, by Docker status, so no tmux query slows them:
``running`` (running or restarting, shown in a pane or not), ``paused``, ``exited``
(exited, dead, or created and never started) and ``total``. A status line re-runs the
command every few seconds, so a failure prints the marker :data:`FAILED` and never more
on standard output.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dmux_async.errors import UserError
from dmux_async.model import Container

if TYPE_CHECKING:
    from dmux_async.engine import Engine

DEFAULT_FORMAT = "dmux {running}▶ {paused}‖"
FAILED = "dmux:!"
FIELDS = ("running", "paused", "exited", "total")


@dataclass(frozen=True)
class Counts:
    """How many of a server's containers are in each state."""

    running: int = 0
    paused: int = 0
    exited: int = 0

    @property
    def total(self) -> int:
        return self.running + self.paused + self.exited


def count(containers: Iterable[Container]) -> Counts:
    """Sort containers into running, paused and exited by their Docker status."""
    running = paused = exited = 0

    for container in containers:
        if container.status in ("running", "restarting"):
            running += 1
        elif container.status == "paused":
            paused += 1
        else:
            exited += 1

    return Counts(running, paused, exited)


def render(counts: Counts, fmt: str) -> str:
    """Fill ``fmt``'s ``{running}`` ``{paused}`` ``{exited}`` ``{total}`` fields."""
    values = {"running": counts.running, "paused": counts.paused,
              "exited": counts.exited, "total": counts.total}

    try:
        return fmt.format_map(values)
    except KeyError as exc:
        reason = f"no field {{{exc.args[0]}}}"
    except (IndexError, ValueError, AttributeError) as exc:
        reason = str(exc)

    fields = " ".join(f"{{{f}}}" for f in FIELDS)
    raise UserError(f"bad --format {fmt!r}: {reason}; the fields are {fields}")


def check_format(fmt: str) -> None:
    """Fail on a bad format before asking the engine anything."""
    render(Counts(), fmt)


async def read(engine: "Engine") -> Counts:
    """The counts of the server ``engine`` is scoped to."""
    return count(await engine.containers())
