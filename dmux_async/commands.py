"""What each dmux command does, as async functions over one engine and one tmux server.

The command line and the watcher both call these. Every change is made under the server's
lock (see :mod:`dmux_async.lock`), reading the engine and tmux afresh each time.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio
import structlog

from dmux_async import choosing, names, screens, showing
from dmux_async.context import Context, anchor_of, locked, open_context, snapshot
from dmux_async.engine import Spec
from dmux_async.errors import HandBack, NameTaken, UserError
from dmux_async.model import Container, Pane, State, panes_of, state_of
from dmux_async.panes import Split
from dmux_async.pull_progress import PullProgress

__all__ = ["Context", "open_context"]

log = structlog.get_logger("dmux")

_NAME_TRIES = 20
ShowPull = Callable[[str], PullProgress]  # makes the progress display of one image's pull

class HasChanges(UserError):
    """A delete that would lose changes made in the container's filesystem."""

    def __init__(self, name: str, changed: list[str]) -> None:
        shown = ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else "")
        super().__init__(
            f"{name} has {len(changed)} changed path(s) ({shown}): `dmux save {name} IMAGE` "
            "keeps them; `dmux delete --force` removes it anyway"
        )
        self.name = name


@dataclass(frozen=True)
class InitRequest:
    """``dmux init`` options, in ``docker run`` terms."""

    image: str
    name: str | None = None
    command: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    split: Split = Split.RIGHT
    auto_pause: bool = True


@dataclass(frozen=True)
class StartRequest:
    """``dmux start`` options: names, or every container not shown, and where they go."""

    names: list[str] = field(default_factory=list)
    every: bool = False
    session: str | None = None
    split: Split | None = None


@dataclass(frozen=True)
class Outcome:
    """What a command did to one container."""

    name: str
    id: str
    action: str
    pane: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Row:
    """One line of ``dmux ls``."""

    container: Container
    state: State
    pane: Pane | None


async def init(ctx: Context, request: InitRequest, show_pull: ShowPull | None = None) -> Outcome:
    """Create a container and start it attached in a new pane beside the current one.

    An image the engine lacks is pulled first, with its progress given to ``show_pull``.
    Without ``show_pull`` (a watcher answering for a client) that raises :class:`HandBack`
    instead, so that the client pulls in its own process.
    """
    anchor = anchor_of(ctx)
    await ctx.tmux.describe(anchor)  # a bad -t fails here, before anything is made

    await _ensure_image(ctx, request.image, show_pull)

    async with locked(ctx):
        name, container_id = await _create(ctx, request)
        pane = await showing.open_new(ctx, anchor, request.split, container_id, name)

    status = (await ctx.engine.status(container_id)).status
    log.info("container_created", container=name, pane=pane, image=request.image)
    return Outcome(name, container_id, "created", pane, status)


async def stop(ctx: Context, query: str | None) -> Outcome:
    """Freeze a container with ``docker pause`` and close its pane."""
    async with locked(ctx):
        container, layout = await choosing.resolve(ctx, query, "stop", choosing.stoppable)

        if container.status == "paused":  # frozen by hand, say: its pane goes all the same
            await showing.keep_screen_and_close(ctx, container, layout)
            return Outcome(container.name, container.id, "already-paused")

        if container.status not in ("running", "restarting"):
            raise UserError(
                f"{container.name} is not running ({container.status}): nothing to freeze; "
                f"`dmux start {container.name}` runs it again"
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(ctx.engine.pause, container.id)
            tg.start_soon(showing.keep_screen_and_close, ctx, container, layout)

    log.info("container_paused", container=container.name, reason="stop")
    return Outcome(container.name, container.id, "paused")


async def start(ctx: Context, request: "StartRequest") -> list[Outcome]:
    """Show containers in fresh panes: unpause them, attach to them, or run them again.

    One container goes beside the current pane; several go into a new window, tiled,
    unless ``request.split`` says otherwise. A container already shown is focused.
    """
    async with locked(ctx):
        chosen, layout = await choosing.for_start(ctx, request.names, request.every)
        outcomes: list[Outcome] = []
        hidden: list[Container] = []

        for container in chosen:
            shown = panes_of(container, layout.tagged)

            if shown:
                if container.status == "paused":  # shown but frozen by hand: thaw it
                    await ctx.engine.unpause(container.id)

                await ctx.tmux.focus(shown[0].pane_id)
                outcomes.append(Outcome(container.name, container.id, "focused", shown[0].pane_id))
            else:
                hidden.append(container)

        anchor = f"{request.session}:" if request.session else (anchor_of(ctx) if hidden else "")
        opened = await showing.show_all(ctx, hidden, anchor, request.split)

    for container, pane in zip(hidden, opened, strict=True):
        outcomes.append(_resumed(container, pane))

    return outcomes


async def delete(ctx: Context, query: str | None, force: bool = False) -> Outcome:
    """Remove a container, whatever its state, and close its pane.

    Throw-away must not mean lost by accident: a container whose filesystem changed is
    only removed with ``force``.
    """
    async with locked(ctx):
        container, layout = await choosing.resolve(ctx, query, "delete", choosing.shown_here)
        changed = [] if force else await ctx.engine.changes(container.id)

        if changed:
            raise HasChanges(container.name, changed)

        await ctx.engine.remove(container.id)
        await showing.close_panes(ctx, container, layout)
        screens.forget(ctx.place.socket_path, container.id)

    log.info("container_removed", container=container.name, reason="delete")
    return Outcome(container.name, container.id, "removed")


async def exec_in(ctx: Context, query: str | None, command: list[str]) -> Outcome:
    """Open a second shell (or ``command``) in a running container, in its own pane."""
    async with locked(ctx):
        container, _ = await choosing.resolve(ctx, query, "exec in", choosing.stoppable)

        if container.status != "running":
            raise UserError(f"{container.name} is {container.status}: "
                            f"`dmux start {container.name}` it first")

        keys = showing.DETACH_KEYS
        argv = showing.docker_argv(
            ctx, "exec", "-it", "--detach-keys", keys, container.id, *(command or ["sh"])
        )
        pane = await ctx.tmux.open(anchor_of(ctx), Split.RIGHT, argv, container.id, container.name)

    return Outcome(container.name, container.id, "exec", pane)


async def save(ctx: Context, query: str | None, image: str) -> Outcome:
    """Commit a container's filesystem as an image."""
    repository, tag = split_image(image)
    container, _ = await choosing.resolve(ctx, query, "save", choosing.shown_here)
    image_id = await ctx.engine.commit(container.id, repository, tag)
    log.info("container_saved", container=container.name, image=f"{repository}:{tag}")
    return Outcome(container.name, container.id, "saved", detail=image_id)


async def rows(ctx: Context) -> list[Row]:
    """Every dmux container of this tmux server with its state and pane."""
    containers, layout = await snapshot(ctx)
    listed = []

    for container in sorted(containers, key=lambda c: c.created):
        shown = panes_of(container, layout.tagged)
        state = state_of(container, layout.tagged)
        listed.append(Row(container, state, shown[0] if shown else None))

    return listed


def split_image(image: str) -> tuple[str, str]:
    """``repo[:tag]`` into its parts; the tag defaults to ``latest``, like Docker's."""
    repository, sep, tag = image.rpartition(":")

    if not sep or "/" in tag:
        repository, tag = image, "latest"

    if not repository or any(ch.isspace() or ch.isupper() for ch in repository) or not tag:
        raise UserError(f"invalid image name {image!r}: use lowercase REPOSITORY[:TAG]")

    return repository, tag


async def _ensure_image(ctx: Context, image: str, show_pull: ShowPull | None) -> None:
    """Pull an image the engine lacks; outside the server lock, since it may take minutes."""
    if await ctx.engine.has_image(image):
        return

    if show_pull is None:
        raise HandBack(f"{image} must be pulled")

    progress = show_pull(image)
    pulled = False

    try:
        await ctx.engine.pull(image, progress.update)
        pulled = True
    finally:
        progress.finish(pulled)

    log.info("image_pulled", image=image)


def _spec(ctx: Context, request: InitRequest, name: str) -> Spec:
    return Spec(
        name=name,
        image=request.image,
        tmux=ctx.place.socket_path,
        command=request.command,
        env=_env(request.env, ctx.environ),
        volumes=request.volumes,
        workdir=request.workdir,
        user=request.user,
        auto_pause=request.auto_pause,
    )


def _env(pairs: list[str], environ: Mapping[str, str]) -> list[str]:
    """``-e KEY=VALUE`` as given; ``-e KEY`` takes the caller's value, like ``docker run``."""
    resolved = []

    for pair in pairs:
        key, sep, _ = pair.partition("=")

        if not key:
            raise UserError(f"invalid environment variable {pair!r}: use KEY=VALUE or KEY")

        if sep:
            resolved.append(pair)
        elif key in environ:
            resolved.append(f"{key}={environ[key]}")

    return resolved


async def _create(ctx: Context, request: InitRequest) -> tuple[str, str]:
    """Create the container; a generated name that is taken already is drawn again."""
    if request.name:
        name = names.check_name(request.name)
        return name, await ctx.engine.create(_spec(ctx, request, name))

    taken: set[str] = set()  # the engine says which are taken: asking first costs a listing

    for _ in range(_NAME_TRIES):
        name = names.generate_name(taken)

        try:
            return name, await ctx.engine.create(_spec(ctx, request, name))
        except NameTaken:
            taken.add(name)

    raise UserError("could not find a free container name; pass --name")


def _resumed(container: Container, pane: str) -> Outcome:
    if container.status in showing.NOT_RUNNING:
        log.info("container_restarted", container=container.name, pane=pane)
        return Outcome(container.name, container.id, "restarted", pane)

    log.info("container_resumed", container=container.name, pane=pane)
    return Outcome(container.name, container.id, "resumed", pane)
