"""What every command works with: where it runs, the engine, the tmux server, the lock."""

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import anyio

from dmux_async.engine import Engine, connect
from dmux_async.errors import TmuxServerGone, UserError
from dmux_async.lock import server_lock
from dmux_async.model import Container
from dmux_async.panes import Layout, Tmux
from dmux_async.place import Place

NOT_IN_TMUX = (
    "not inside tmux: run dmux from a tmux pane, or pass -t SESSION:WINDOW "
    "(and -L NAME or -S PATH to pick the tmux server)"
)


@dataclass(frozen=True)
class Context:
    """What every command works with: where it runs, the engine, the tmux server."""

    place: Place
    environ: Mapping[str, str]
    engine: Engine
    tmux: Tmux


@asynccontextmanager
async def open_context(place: Place, environ: Mapping[str, str]) -> AsyncIterator[Context]:
    async with connect(place.socket_path, environ) as engine:
        yield Context(place, environ, engine, Tmux(place.socket_path))


def anchor_of(ctx: Context) -> str:
    """The tmux target new panes go beside; outside tmux with no ``-t``, an error."""
    if ctx.place.anchor is None:
        raise UserError(NOT_IN_TMUX)

    return ctx.place.anchor


def locked(ctx: Context) -> AbstractAsyncContextManager[None]:
    return server_lock(ctx.place.socket_path)


async def snapshot(ctx: Context) -> tuple[list[Container], Layout]:
    """The engine's containers and tmux's panes, read at the same time.

    With no tmux server running no container has a pane; that is an answer, and
    ``ls``, ``stop`` or ``delete`` by name still work. A tmux that does not answer is not.
    """
    containers: list[Container] = []
    layout = Layout({}, [])

    async def read_containers() -> None:
        containers.extend(await ctx.engine.containers())

    async def read_layout() -> None:
        nonlocal layout

        with contextlib.suppress(TmuxServerGone):
            layout = await ctx.tmux.layout()

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_containers)
        tg.start_soon(read_layout)

    return containers, layout
