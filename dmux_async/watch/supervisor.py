"""The watcher's main loop: one task group that owns every signal source and the reconcile.

Sources (tmux hooks, engine events, a slow resync, the command socket) only ring a
one-slot doorbell; the main loop answers each ring with one reconcile under the server
lock. SIGINT and SIGTERM set an event, and the loop then shuts down in steps.
"""

import fcntl
import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from dmux_async.engine import Engine, connect
from dmux_async.errors import DmuxError, EngineUnreachable, TmuxServerGone, UserError
from dmux_async.lock import server_lock
from dmux_async.model import Pane
from dmux_async.panes import Tmux
from dmux_async.place import Place, make_server_files, server_files
from dmux_async.watch import doorbell
from dmux_async.watch.reconcile import Action, Verb, decide
from dmux_async.watch.service import Service

log = structlog.get_logger("dmux.watch")

RESYNC_EVERY = 30.0
RETRY_AFTER = 0.5
BACKOFF_MAX = 10.0
PAUSES_AT_ONCE = 32
BREATH = 0.02
# Engine events after which a container may run unseen, or a pane show nothing: attach,
# resize and exec events cannot make work. Podman says died and remove for die and destroy.
STATE_CHANGES = frozenset({"start", "unpause", "restart", "die", "died", "destroy", "remove"})


@dataclass(frozen=True)
class WatchPaths:
    """The files one watcher owns: its lock (one watcher per server) and its socket."""

    lock: Path
    socket: Path

    @classmethod
    def of(cls, socket_path: str) -> "WatchPaths":
        folder = server_files(socket_path)
        return cls(folder / "watch.lock", folder / "watch.sock")


class Watcher:
    """Supervises the dmux containers of one tmux server."""

    def __init__(self, place: Place, environ: Mapping[str, str]) -> None:
        self.place = place
        self.environ = environ
        self.tmux = Tmux(place.socket_path)
        self._send, self._receive = _doorbell()

    def wake(self, reason: str) -> None:
        """Ring the doorbell; rings while one is pending fold into it."""
        with suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send.send_nowait(reason)

    async def run(self) -> None:
        """Watch until SIGINT or SIGTERM."""
        paths = WatchPaths.of(self.place.socket_path)

        with _single_instance(paths, self.place.socket_path):
            async with connect(self.place.socket_path, self.environ) as engine:
                await self._supervise(engine, paths)

    async def once(self) -> int:
        """One reconcile, for scripts; returns how many actions it took."""
        async with connect(self.place.socket_path, self.environ) as engine:
            return len(await self.reconcile(engine, "once"))

    async def reconcile(self, engine: Engine, reason: str) -> list[Action]:
        """Read Docker, then tmux, under the server lock, and act on the difference.

        Docker is read first: a container found running whose pane is not there a moment
        later has truly lost it, since commands tag the pane before releasing the lock.
        """
        async with server_lock(self.place.socket_path):
            containers = await engine.containers()
            panes = await self._panes()
            actions = decide(containers, panes)

            with anyio.CancelScope(shield=True):  # a stop request does not cut an action
                await self._apply(engine, actions)

        log.debug("reconciled", reason=reason, containers=len(containers), actions=len(actions))
        return actions

    async def _supervise(self, engine: Engine, paths: WatchPaths) -> None:
        stop = anyio.Event()
        log.info("watcher_started", socket=self.place.socket_path, pid=os.getpid())

        async with anyio.create_task_group() as tg:
            tg.start_soon(_on_signals, stop)
            tg.start_soon(doorbell.ring_forever, self.tmux, self.wake)
            tg.start_soon(self._follow_engine)
            tg.start_soon(self._resync)
            tg.start_soon(_serve, paths.socket, Service(self.environ))
            self.wake("watcher-started")

            async with anyio.create_task_group() as loop:
                loop.start_soon(self._answer_rings, engine)
                await stop.wait()
                log.info("watcher_stopping", step="reconcile-loop")
                loop.cancel_scope.cancel()

            log.info("watcher_stopping", step="sources")
            tg.cancel_scope.cancel()

        with suppress(DmuxError), anyio.move_on_after(2):
            await doorbell.remove_hooks(self.tmux)

        log.info("watcher_stopped")

    async def _answer_rings(self, engine: Engine) -> None:
        """One reconcile per ring, with a short breath between two.

        The breath lets a command that waits for the server lock take it: a lock poller
        would otherwise starve while rings arrive back to back. A lone ring is answered
        at once.
        """
        failures = 0

        async for reason in self._receive:
            try:
                await self.reconcile(engine, reason)
                await anyio.sleep(BREATH)
                failures = 0
            except DmuxError as exc:
                failures += 1
                delay = min(RETRY_AFTER * 2 ** (failures - 1), BACKOFF_MAX)
                log.warning("reconcile_skipped", reason=str(exc), retry_in=delay)
                await anyio.sleep(delay)
                self.wake("retry")

    async def _panes(self) -> list[Pane] | None:
        """Tagged panes, or ``None`` when no server runs; a timeout raises, never 'none'."""
        try:
            return (await self.tmux.layout()).tagged
        except TmuxServerGone:
            return None

    async def _apply(self, engine: Engine, actions: list[Action]) -> None:
        limiter = anyio.CapacityLimiter(PAUSES_AT_ONCE)

        async def act(action: Action) -> None:
            async with limiter:
                await self._act(engine, action)

        async with anyio.create_task_group() as tg:
            for action in actions:
                tg.start_soon(act, action)

    async def _act(self, engine: Engine, action: Action) -> None:
        container, pane = action.container, action.pane
        name = container.name if container else (pane.container_id[:12] if pane else "")

        try:
            if action.verb is Verb.PAUSE and container:
                await engine.pause(container.id)
                log.info("container_paused", container=name, reason=action.reason)
            elif pane:
                if action.reason == "container-removed":
                    await self.tmux.notify(pane.pane_id, f"dmux: container {name} was removed")

                await self.tmux.close(pane.pane_id, pane.container_id)
                log.info("pane_closed", container=name, pane=pane.pane_id,
                         session=pane.session, reason=action.reason)
        except (UserError, DmuxError) as exc:
            # A container can change state between the read and the act (a racing
            # `docker rm`, say): the next reconcile sees the new state.
            log.warning("action_failed", container=name, verb=action.verb.value, reason=str(exc))
            self.wake("action-failed")

    async def _follow_engine(self) -> None:
        """Engine events ring the doorbell; reconnect with backoff when the stream ends."""
        attempt = 0

        while True:
            attempt += 1

            try:
                async with connect(self.place.socket_path, self.environ) as engine:
                    await engine.containers()  # proves the engine answers
                    log.info("engine_connected", attempt=attempt)
                    attempt = 0
                    self.wake("engine-connected")  # what changed while it was down
                    await engine.follow_events(self._on_engine_event)
                log.warning("engine_stream_ended")
            except* (EngineUnreachable, DmuxError) as group:
                log.warning("engine_unreachable", attempt=attempt, reason=str(group.exceptions[0]))

            await anyio.sleep(min(RETRY_AFTER * 2 ** max(attempt - 1, 0), BACKOFF_MAX))

    def _on_engine_event(self, event: dict[str, object]) -> None:
        action = str(event.get("Action", ""))
        actor = event.get("Actor")
        attributes = actor.get("Attributes", {}) if isinstance(actor, dict) else {}

        if action in ("destroy", "remove"):
            log.info("container_destroyed", container=attributes.get("name"))

        if action in STATE_CHANGES:
            self.wake(f"engine-{action}")

    async def _resync(self) -> None:
        while True:
            await anyio.sleep(RESYNC_EVERY)
            self.wake("resync")


def _doorbell() -> tuple[MemoryObjectSendStream[str], MemoryObjectReceiveStream[str]]:
    send, receive = anyio.create_memory_object_stream[str](1)
    return send, receive


async def _on_signals(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("signal_received", signal=signal.Signals(signum).name)
            stop.set()
            return


async def _serve(path: Path, service: Service) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)  # stale: the lock proves no other watcher owns it

    listener = await anyio.create_unix_listener(path, mode=0o600)

    try:
        await listener.serve(service.handle)
    finally:
        with anyio.CancelScope(shield=True):
            await listener.aclose()

        with suppress(FileNotFoundError):
            os.unlink(path)


@contextmanager
def _single_instance(paths: WatchPaths, socket_path: str) -> Iterator[None]:
    """Hold the watcher lock of a tmux server, or refuse: one watcher per server."""
    make_server_files(socket_path)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise UserError(
            f"a dmux watcher already runs for tmux server {socket_path} (pid {owner})"
        ) from None

    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
