"""Shell completion of container names, for typer's ``autocompletion=`` callbacks.

Names come from the watcher when one answers, else from the engine and tmux in this
process. A completion must never fail loudly: on any error it offers nothing.
"""

from collections.abc import Collection
from typing import TYPE_CHECKING

import typer

from dmux_async import roster

if TYPE_CHECKING:
    from dmux_async.cli import Invocation

RUNNING = frozenset({"attached", "detached"})
NOT_SHOWN = frozenset({"detached", "paused", "exited", "created"})


def any_name(ctx: typer.Context, incomplete: str) -> list[str]:
    """Every container of the server: for delete and save."""
    return _names(ctx, incomplete, None)


def running_name(ctx: typer.Context, incomplete: str) -> list[str]:
    """Containers that run: what ``dmux stop`` can freeze."""
    return _names(ctx, incomplete, RUNNING)


def startable_name(ctx: typer.Context, incomplete: str) -> list[str]:
    """Containers with no pane: what ``dmux start`` can show."""
    return _names(ctx, incomplete, NOT_SHOWN)


def _names(ctx: typer.Context, incomplete: str, states: Collection[str] | None) -> list[str]:
    try:
        entries = _entries(ctx)
    except Exception:  # a completion offers nothing rather than an error
        return []

    return [e.name for e in entries
            if e.name.startswith(incomplete) and (states is None or e.state in states)]


def _entries(ctx: typer.Context) -> list[roster.Entry]:
    from dmux_async.cli import Invocation

    call = ctx.obj
    root = ctx.find_root().params

    if not isinstance(call, Invocation):
        return []

    name, path = root.get("socket_name"), root.get("socket_path")
    found = roster.from_watcher(call.environ, call.cwd, name, path)
    return found if found is not None else _here(call, name, path)


def _here(
    call: "Invocation", socket_name: str | None, socket_path: str | None
) -> list[roster.Entry]:
    import anyio

    from dmux_async import commands
    from dmux_async.place import find_place

    place = find_place(call.environ, socket_name, socket_path)

    async def read() -> list[roster.Entry]:
        async with commands.open_context(place, call.environ) as context:
            return roster.from_rows(await commands.rows(context))

    return anyio.run(read)
