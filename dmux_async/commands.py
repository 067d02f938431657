"""What each dmux command does, as async functions over one engine and one tmux server.

The command line and the watcher both call these. Every change is made under the server's
lock (see :mod:`dmux_async.lock`), reading the engine and tmux afresh each time.
"""

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import structlog

from dmux_async import names, screens
from dmux_async.endpoint import CLIENT_VARIABLES
from dmux_async.engine import Engine, Spec, connect
from dmux_async.errors import HandBack, NameTaken, TmuxServerGone, UserError
from dmux_async.lock import server_lock
from dmux_async.model import Container, Pane, State, panes_of, state_of
from dmux_async.panes import Layout, Split, Tmux
from dmux_async.place import Place
from dmux_async.pull_progress import PullProgress

log = structlog.get_logger("dmux")

ShowPull = Callable[[str], PullProgress]  # makes the progress display of one image's pull

# The attach client in a pane must not hold back keys shells use. Docker's default detach
# sequence starts with ctrl-p (history-up); ctrl-] is bound to almost nothing. Closing the
# pane is dmux's way to detach.
DETACH_KEYS = "ctrl-],ctrl-]"
START_TIMEOUT = 20.0
_NOT_RUNNING = ("exited", "created", "dead")
_POLL = 0.02
NOT_IN_TMUX = (
    "not inside tmux: run dmux from a tmux pane, or pass -t SESSION:WINDOW "
    "(and -L NAME or -S PATH to pick the tmux server)"
)


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
class Context:
    """What every command works with: where it runs, the engine, the tmux server."""

    place: Place
    environ: Mapping[str, str]
    engine: Engine
    tmux: Tmux


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


@asynccontextmanager
async def open_context(place: Place, environ: Mapping[str, str]) -> AsyncIterator[Context]:
    async with connect(place.socket_path, environ) as engine:
        yield Context(place, environ, engine, Tmux(place.socket_path))


async def init(ctx: Context, request: InitRequest, show_pull: ShowPull | None = None) -> Outcome:
    """Create a container and start it attached in a new pane beside the current one.

    An image the engine lacks is pulled first, with its progress given to ``show_pull``.
    Without ``show_pull`` (a watcher answering for a client) that raises :class:`HandBack`
    instead, so that the client pulls in its own process.
    """
    anchor = _anchor(ctx)
    await ctx.tmux.describe(anchor)  # a bad -t fails here, before anything is made

    await _ensure_image(ctx, request.image, show_pull)

    async with _locked(ctx):
        name, container_id = await _create(ctx, request)
        before = (await ctx.engine.status(container_id)).started_at
        pane = await _open_or_remove(ctx, anchor, request.split, container_id, name)

    status = await _wait_started(ctx, container_id, name, pane, before)
    log.info("container_created", container=name, pane=pane, image=request.image)
    return Outcome(name, container_id, "created", pane, status)


async def stop(ctx: Context, query: str | None) -> Outcome:
    """Freeze a container with ``docker pause`` and close its pane."""
    async with _locked(ctx):
        container, layout = await _resolve(ctx, query, "stop", _stoppable)

        if container.status == "paused":  # frozen by hand, say: its pane goes all the same
            await _keep_screen_and_close(ctx, container, layout)
            return Outcome(container.name, container.id, "already-paused")

        if container.status not in ("running", "restarting"):
            raise UserError(
                f"{container.name} is not running ({container.status}): nothing to freeze; "
                f"`dmux start {container.name}` runs it again"
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(ctx.engine.pause, container.id)
            tg.start_soon(_keep_screen_and_close, ctx, container, layout)

    log.info("container_paused", container=container.name, reason="stop")
    return Outcome(container.name, container.id, "paused")


async def start(ctx: Context, request: "StartRequest") -> list[Outcome]:
    """Show containers in fresh panes: unpause them, attach to them, or run them again.

    One container goes beside the current pane; several go into a new window, tiled,
    unless ``request.split`` says otherwise. A container already shown is focused.
    """
    async with _locked(ctx):
        chosen, layout = await _chosen(ctx, request)
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

        anchor = f"{request.session}:" if request.session else (_anchor(ctx) if hidden else "")
        before = {c.id: (await ctx.engine.status(c.id)).started_at
                  for c in hidden if c.status in _NOT_RUNNING}
        opened = await _show_all(ctx, hidden, anchor, request.split)

    for container, pane in zip(hidden, opened, strict=True):
        outcomes.append(await _resumed(ctx, container, pane, before.get(container.id, "")))

    return outcomes


async def delete(ctx: Context, query: str | None, force: bool = False) -> Outcome:
    """Remove a container, whatever its state, and close its pane.

    Throw-away must not mean lost by accident: a container whose filesystem changed is
    only removed with ``force``.
    """
    async with _locked(ctx):
        container, layout = await _resolve(ctx, query, "delete", _shown_here)
        changed = [] if force else await ctx.engine.changes(container.id)

        if changed:
            raise HasChanges(container.name, changed)

        await ctx.engine.remove(container.id)
        await _close_panes(ctx, container, layout)
        screens.forget(ctx.environ, container.id)

    log.info("container_removed", container=container.name, reason="delete")
    return Outcome(container.name, container.id, "removed")


async def exec_in(ctx: Context, query: str | None, command: list[str]) -> Outcome:
    """Open a second shell (or ``command``) in a running container, in its own pane."""
    async with _locked(ctx):
        container, _ = await _resolve(ctx, query, "exec in", _stoppable)

        if container.status != "running":
            raise UserError(f"{container.name} is {container.status}: "
                            f"`dmux start {container.name}` it first")

        argv = docker_argv(ctx, "exec", "-it", "--detach-keys", DETACH_KEYS, container.id,
                           *(command or ["sh"]))
        pane = await ctx.tmux.open(_anchor(ctx), Split.RIGHT, argv, container.id, container.name)

    return Outcome(container.name, container.id, "exec", pane)


async def save(ctx: Context, query: str | None, image: str) -> Outcome:
    """Commit a container's filesystem as an image."""
    repository, tag = split_image(image)
    container, _ = await _resolve(ctx, query, "save", _shown_here)
    image_id = await ctx.engine.commit(container.id, repository, tag)
    log.info("container_saved", container=container.name, image=f"{repository}:{tag}")
    return Outcome(container.name, container.id, "saved", detail=image_id)


async def rows(ctx: Context) -> list[Row]:
    """Every dmux container of this tmux server with its state and pane."""
    containers, layout = await _snapshot(ctx)
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


def _anchor(ctx: Context) -> str:
    if ctx.place.anchor is None:
        raise UserError(NOT_IN_TMUX)

    return ctx.place.anchor


def _locked(ctx: Context) -> AbstractAsyncContextManager[None]:
    return server_lock(ctx.place.socket_path)


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


def docker_argv(ctx: Context, *args: str) -> list[str]:
    """The ``docker`` client, in a pane, pointed at the engine dmux talks to.

    Its flags name dmux's engine; ``env -u`` keeps the tmux server's own ``DOCKER_*``
    variables (a ``DOCKER_TLS_VERIFY`` meant for another engine, say) from changing that.
    """
    unset = [arg for name in CLIENT_VARIABLES for arg in ("-u", name)]
    return ["env", *unset, "docker", *ctx.engine.endpoint.cli_flags(), *args]


def attach_argv(ctx: Context, container_id: str, *, start: bool) -> list[str]:
    """The pane's program: the ``docker`` client attached to the container's terminal."""
    verb = ["start", "-ai"] if start else ["attach"]
    return docker_argv(ctx, *verb, "--detach-keys", DETACH_KEYS, container_id)


async def _create(ctx: Context, request: InitRequest) -> tuple[str, str]:
    """Create the container; a generated name taken by a container not dmux's is redrawn."""
    if request.name:
        name = names.check_name(request.name)
        return name, await ctx.engine.create(_spec(ctx, request, name))

    taken = {c.name for c in await ctx.engine.containers()}

    for _ in range(5):
        name = names.generate_name(taken)

        try:
            return name, await ctx.engine.create(_spec(ctx, request, name))
        except NameTaken:
            taken.add(name)

    raise UserError("could not find a free container name; pass --name")


async def _open_or_remove(
    ctx: Context, anchor: str, split: Split, container_id: str, name: str
) -> str:
    """Open and tag the pane of a new container; remove the container if that fails."""
    try:
        argv = attach_argv(ctx, container_id, start=True)
        pane = await ctx.tmux.open(anchor, split, argv, container_id, name)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await ctx.engine.remove(container_id)
        raise

    return pane


async def _chosen(ctx: Context, request: StartRequest) -> tuple[list[Container], Layout]:
    """The containers a start is about, each once, in the order given."""
    if not request.every:
        if len(request.names) <= 1:
            query = request.names[0] if request.names else None
            container, layout = await _resolve(ctx, query, "start", _startable)
            return [container], layout

        containers, layout = await _snapshot(ctx)
        found = [names.resolve(q, containers) for q in request.names]
        return list({c.id: c for c in found}.values()), layout

    containers, layout = await _snapshot(ctx)
    chosen = [c for c in containers if _startable(c, layout, None)]

    if not chosen:
        raise UserError("no paused, detached or exited dmux container to start")

    return sorted(chosen, key=lambda c: c.created), layout


async def _show_all(
    ctx: Context, containers: list[Container], anchor: str, split: Split | None
) -> list[str]:
    """Open a pane for each container; several without a split go into one tiled window."""
    if len(containers) > 1 and split is None:
        first = await _show(ctx, containers[0], anchor, Split.WINDOW)
        panes = [first]

        for container in containers[1:]:
            panes.append(await _show(ctx, container, first, Split.BELOW))
            await ctx.tmux.arun("select-layout", "-t", first, "tiled")

        return panes

    return [await _show(ctx, c, anchor, split or Split.RIGHT) for c in containers]


async def _show(ctx: Context, container: Container, anchor: str, split: Split) -> str:
    """Open a tagged pane on a container that has none, unpausing it first if frozen."""
    start = container.status in _NOT_RUNNING

    if container.status == "paused":
        await ctx.engine.unpause(container.id)

    try:
        screen = await _screen_for(ctx, container)
        argv = screens.replaying(screen, attach_argv(ctx, container.id, start=start))
        pane = await ctx.tmux.open(anchor, split, argv, container.id, container.name)
    except BaseException:
        if container.status == "paused":
            with anyio.CancelScope(shield=True):
                await ctx.engine.pause(container.id)
        raise

    return pane


async def _keep_screen_and_close(ctx: Context, container: Container, layout: Layout) -> None:
    """Keep the screen of the pane that shows the container, and close its panes."""
    shown = panes_of(container, layout.tagged)
    first = shown[0].pane_id if shown else None

    if first:
        screen = await ctx.tmux.capture_and_close(first, container.id)

        if screen is not None:
            screens.keep(ctx.environ, container.id, screen)

    for pane in layout.tagged:
        if pane.container_id == container.id and pane.pane_id != first:
            await ctx.tmux.close(pane.pane_id, container.id)


async def _screen_for(ctx: Context, container: Container) -> Path:
    """The screen kept at stop, else the container's recent output, ready to replay."""
    if not screens.has_screen(ctx.environ, container.id):
        recent = await ctx.engine.recent_output(container.id, screens.RECENT_LINES)
        screens.keep(ctx.environ, container.id, recent)

    return screens.screen_path(ctx.environ, container.id)


async def _resumed(ctx: Context, container: Container, pane: str, before: str) -> Outcome:
    if container.status in _NOT_RUNNING:
        status = await _wait_started(ctx, container.id, container.name, pane, before,
                                     remove=False)
        return Outcome(container.name, container.id, "restarted", pane, status)

    log.info("container_resumed", container=container.name, pane=pane)
    return Outcome(container.name, container.id, "resumed", pane)


async def _wait_started(
    ctx: Context, container_id: str, name: str, pane: str, before: str, *, remove: bool = True
) -> str:
    """Wait until the pane's ``docker start -ai`` has started the container.

    ``before`` is when the container last started, as the engine said before the pane
    opened: a later one means this start happened, even if the process already exited.
    If the pane ends first, the start failed (a command not found in the image, say):
    report the engine's reason and, for a container made just now, remove it.
    """
    with anyio.move_on_after(START_TIMEOUT):
        while True:
            state = await ctx.engine.status(container_id)

            if state.status in ("running", "paused") or state.started_at != before:
                return state.status

            layout = await ctx.tmux.layout()

            if not any(p.pane_id == pane and not p.dead for p in layout.tagged):
                await _abandon(ctx, container_id, pane, remove)
                raise UserError(f"{name} could not start: {state.error or 'its pane closed'}")

            await anyio.sleep(_POLL)

    return "created"


async def _abandon(ctx: Context, container_id: str, pane: str, remove: bool) -> None:
    with anyio.CancelScope(shield=True):
        await ctx.tmux.close(pane, container_id)

        if remove:
            await ctx.engine.remove(container_id)


async def _close_panes(ctx: Context, container: Container, layout: Layout) -> None:
    """Close every pane tagged with the container, dead ones (remain-on-exit) included."""
    for pane in layout.tagged:
        if pane.container_id == container.id:
            await ctx.tmux.close(pane.pane_id, container.id)


async def _snapshot(ctx: Context) -> tuple[list[Container], Layout]:
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


Candidates = Callable[[Container, Layout, str | None], bool]


async def _resolve(
    ctx: Context, query: str | None, verb: str, candidate: Candidates
) -> tuple[Container, Layout]:
    """The container a command is about: by name or id prefix, else from where it runs.

    With no name: the container shown in the current pane, else the only candidate in
    the current session, else an error that lists the candidates.
    """
    containers, layout = await _snapshot(ctx)

    if query is not None:
        return names.resolve(query, containers), layout

    here = await _here(ctx, layout)
    shown = [p.container_id for p in layout.tagged if p.pane_id == here[0]]
    current = [c for c in containers if c.id in shown]

    if current:
        return current[0], layout

    candidates = [c for c in containers if candidate(c, layout, here[1])]
    return names.pick_only(candidates, verb), layout


async def _here(ctx: Context, layout: Layout) -> tuple[str | None, str | None]:
    """The current pane and session: from ``-t``, else ``$TMUX_PANE``; none outside tmux."""
    anchor = ctx.place.anchor

    if anchor is None:
        return None, None

    if anchor in layout.sessions:
        return anchor, layout.sessions[anchor]

    pane, _, session = (await ctx.tmux.describe(anchor)).partition("\t")
    return pane, session


def _in_session(container: Container, layout: Layout, session: str | None) -> bool:
    shown = panes_of(container, layout.tagged)
    return any(p.session == session for p in shown) if session else bool(shown)


def _stoppable(container: Container, layout: Layout, session: str | None) -> bool:
    return container.status == "running" and _in_session(container, layout, session)


def _shown_here(container: Container, layout: Layout, session: str | None) -> bool:
    return _in_session(container, layout, session)


def _startable(container: Container, layout: Layout, session: str | None) -> bool:
    return not panes_of(container, layout.tagged)
