"""The panes that show containers: opening them on the ``docker`` client, and closing them.

A pane runs the ``docker`` client attached to the container's terminal: it handles raw
mode, resizing and the escape keys better than anything dmux could write.
"""

import time
from pathlib import Path

import anyio

from dmux_async import screens
from dmux_async.context import Context
from dmux_async.endpoint import CLIENT_VARIABLES
from dmux_async.errors import UserError
from dmux_async.model import Container, panes_of
from dmux_async.panes import Layout, Split

# The attach client in a pane must not hold back keys shells use. Docker's default detach
# sequence starts with ctrl-p (history-up); ctrl-] is bound to almost nothing. Closing the
# pane is dmux's way to detach.
DETACH_KEYS = "ctrl-],ctrl-]"
NOT_RUNNING = ("exited", "created", "dead")


def docker_argv(ctx: Context, *args: str) -> list[str]:
    """The ``docker`` client, in a pane, pointed at the engine dmux talks to.

    Its flags name dmux's engine; ``env -u`` keeps the tmux server's own ``DOCKER_*``
    variables (a ``DOCKER_TLS_VERIFY`` meant for another engine, say) from changing that.
    """
    unset = [arg for name in CLIENT_VARIABLES for arg in ("-u", name)]
    return ["env", *unset, "docker", *ctx.engine.endpoint.cli_flags(), *args]


async def open_new(
    ctx: Context, anchor: str, split: Split, container_id: str, name: str
) -> str:
    """Start a new container and open its tagged pane; remove the container if either fails.

    The engine starts it (and says at once when it cannot, a command missing from the
    image, say); the pane replays what it printed before the attach connected.
    """
    try:
        await _start(ctx, container_id, name)
        argv = _catching_up(ctx, container_id, since=0.0)
        pane = await ctx.tmux.open(anchor, split, argv, container_id, name)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await ctx.engine.remove(container_id)
        raise

    return pane


async def show_all(
    ctx: Context, containers: list[Container], anchor: str, split: Split | None
) -> list[str]:
    """Open a pane for each container; several without a split go into one tiled window."""
    if len(containers) > 1 and split is None:
        first = await show(ctx, containers[0], anchor, Split.WINDOW)
        panes = [first]

        for container in containers[1:]:
            panes.append(await show(ctx, container, first, Split.BELOW))
            await ctx.tmux.arun("select-layout", "-t", first, "tiled")

        return panes

    return [await show(ctx, c, anchor, split or Split.RIGHT) for c in containers]


async def show(ctx: Context, container: Container, anchor: str, split: Split) -> str:
    """Open a tagged pane on a container that has none: thaw it, or run it again."""
    thawed_at = time.time()

    if container.status == "paused":
        await ctx.engine.unpause(container.id)
    elif container.status in NOT_RUNNING:
        await _start(ctx, container.id, container.name)

    try:
        argv = await _pane_program(ctx, container, thawed_at)
        pane = await ctx.tmux.open(anchor, split, argv, container.id, container.name)
    except BaseException:
        if container.status == "paused":
            with anyio.CancelScope(shield=True):
                await ctx.engine.pause(container.id)
        raise

    return pane


async def _pane_program(ctx: Context, container: Container, thawed_at: float) -> list[str]:
    """Replay what the pane showed and what was printed since, then attach."""
    if not screens.has_screen(ctx.place.socket_path, container.id):
        thawed_at = time.time()  # the recent output read now holds everything before

    await _screen_for(ctx, container)
    return _catching_up(ctx, container.id, thawed_at)


async def _start(ctx: Context, container_id: str, name: str) -> None:
    try:
        await ctx.engine.start(container_id)
    except UserError as exc:
        raise UserError(f"{name} could not start: {exc}") from exc


def _catching_up(ctx: Context, container_id: str, since: float) -> list[str]:
    screen = screens.screen_path(ctx.place.socket_path, container_id)
    return screens.resuming(screen, docker_argv(ctx), since, container_id, DETACH_KEYS)


async def keep_screen_and_close(ctx: Context, container: Container, layout: Layout) -> None:
    """Keep the screen of the pane that shows the container, and close its panes."""
    shown = panes_of(container, layout.tagged)
    first = shown[0].pane_id if shown else None

    if first:
        screen = await ctx.tmux.capture_and_close(first, container.id)

        if screen is not None:
            screens.keep(ctx.place.socket_path, container.id, screen)

    for pane in layout.tagged:
        if pane.container_id == container.id and pane.pane_id != first:
            await ctx.tmux.close(pane.pane_id, container.id)


async def _screen_for(ctx: Context, container: Container) -> Path:
    """The screen kept at stop, else the container's recent output, ready to replay."""
    if not screens.has_screen(ctx.place.socket_path, container.id):
        recent = await ctx.engine.recent_output(container.id, screens.RECENT_LINES)
        screens.keep(ctx.place.socket_path, container.id, recent)

    return screens.screen_path(ctx.place.socket_path, container.id)


async def close_panes(ctx: Context, container: Container, layout: Layout) -> None:
    """Close every pane tagged with the container, dead ones (remain-on-exit) included."""
    for pane in layout.tagged:
        if pane.container_id == container.id:
            await ctx.tmux.close(pane.pane_id, container.id)
