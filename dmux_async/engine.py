"""The Docker side: every Engine API call dmux makes, with errors turned into dmux's own.

aiodocker speaks the API; this module only names the calls dmux needs and says, in the
user's terms, what a failure means.
"""

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiodocker
import aiohttp
import anyio

from dmux_async.api_version import NegotiatingDocker
from dmux_async.endpoint import Endpoint, resolve
from dmux_async.errors import (
    ContainerGone,
    EngineError,
    EngineUnreachable,
    NameTaken,
    UserError,
)
from dmux_async.model import LABEL_AUTO_PAUSE, LABEL_NAME, LABEL_TMUX, Container

# A tcp engine that does not answer must not hang a command: only connecting is bounded,
# since a pull or an event stream may rightly take long.
CONNECT_TIMEOUT = 10.0
_UNREACHABLE = 900
_UNPAUSE_TRIES = 5
# Docker 20.10 answers some bad input with a 500; these are the user's to fix.
_REFUSED_INPUT = ("invalid volume specification", "invalid tag format",
                  "invalid reference format", "invalid mount config", "invalid mode")
_LISTED = ("Id", "Names", "Image", "State", "Created", "Labels")


@dataclass(frozen=True)
class Spec:
    """What ``dmux init`` asks the engine for, in ``docker run`` terms."""

    name: str
    image: str
    tmux: str
    command: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    auto_pause: bool = True

    def config(self) -> dict[str, Any]:
        """The create-container body: a TTY with stdin open, like ``docker run -it``."""
        env = list(self.env)

        if not any(e.startswith("TERM=") for e in env):
            # tmux's own TERM (tmux-256color) is missing from many minimal images.
            env.insert(0, "TERM=xterm-256color")

        config: dict[str, Any] = {
            "Image": self.image,
            "Tty": True,
            "OpenStdin": True,
            "StdinOnce": False,
            "AttachStdin": True,
            "AttachStdout": True,
            "AttachStderr": True,
            "Env": env,
            "Labels": {
                LABEL_NAME: self.name,
                LABEL_TMUX: self.tmux,
                LABEL_AUTO_PAUSE: "1" if self.auto_pause else "0",
            },
            "HostConfig": {"Binds": list(self.volumes)},
        }

        if self.command:
            config["Cmd"] = list(self.command)

        if self.workdir:
            config["WorkingDir"] = self.workdir

        if self.user:
            config["User"] = self.user

        return config


@dataclass(frozen=True)
class RunState:
    """What the engine says of one container's process."""

    status: str
    started_at: str
    error: str


class Engine:
    """One connection to the Docker engine, scoped to the containers of one tmux server."""

    def __init__(self, docker: aiodocker.Docker, tmux: str, endpoint: Endpoint) -> None:
        self._docker = docker
        self.tmux = tmux
        self.endpoint = endpoint  # also for the ``docker`` client that attaches in a pane

    async def containers(self) -> list[Container]:
        """Every dmux container made for this tmux server, in any state."""
        with _translated():
            entries = await self._docker.containers.list(
                all=True, filters=json.dumps({"label": [f"{LABEL_TMUX}={self.tmux}"]})
            )

        found = (Container.from_listing({k: e[k] for k in _LISTED if k in e}) for e in entries)
        return [c for c in found if c is not None]

    async def version(self) -> str:
        """The engine's version, as ``docker version`` shows it."""
        with _translated():
            data = await self._docker.version()

        return str(data.get("Version", "?"))

    async def create(self, spec: Spec) -> str:
        """Create (not start) a container; the pane that attaches to it starts it."""
        with _translated(image=spec.image, name=spec.name):
            created = await self._docker.containers.create(spec.config(), name=spec.name)

        return str(created.id)

    async def status(self, container_id: str) -> RunState:
        """Docker's status of one container, when it last started, and its last error."""
        with _translated(container=container_id):
            data = await self._docker.containers.container(container_id).show()

        state = data.get("State") or {}
        return RunState(
            str(state.get("Status", "")), str(state.get("StartedAt", "")),
            str(state.get("Error", "")),
        )

    async def start(self, container_id: str) -> None:
        """Start a created or exited container; the engine says at once if it cannot."""
        with _translated(container=container_id):
            await self._docker.containers.container(container_id).start()

    async def pause(self, container_id: str) -> None:
        with _translated(container=container_id):
            await self._docker.containers.container(container_id).pause()

    async def unpause(self, container_id: str) -> None:
        """Thaw a container.

        Docker 20.10 records a pause from containerd's events, after its pause call has
        returned; an unpause close behind it can be refused as 'not paused'. Then the
        engine is asked again, briefly, before that is believed.
        """
        for attempt in range(_UNPAUSE_TRIES):
            try:
                with _translated(container=container_id):
                    await self._docker.containers.container(container_id).unpause()
                return
            except EngineError as exc:
                if "is not paused" not in str(exc) or attempt == _UNPAUSE_TRIES - 1:
                    raise

            if (await self.status(container_id)).status == "running":
                return

            await anyio.sleep(0.02)

    async def remove(self, container_id: str) -> None:
        """Remove a container in any state, paused included."""
        with _translated(container=container_id):
            await self._docker.containers.container(container_id).delete(force=True)

    async def changes(self, container_id: str) -> list[str]:
        """Paths the container's processes added, changed or deleted in its filesystem.

        The folders Docker itself makes for a working directory and for mount points
        (and their parents) are left out: they are no one's work.
        """
        with _translated(container=container_id):
            # aiodocker has no call for this endpoint; its query helper is the way in.
            found = await self._docker._query_json(f"containers/{container_id}/changes")
            data = await self._docker.containers.container(container_id).show()

        made_by_docker = _with_parents(
            [m.get("Destination", "") for m in data.get("Mounts") or []]
            + [(data.get("Config") or {}).get("WorkingDir") or ""]
        )
        paths = (str(change.get("Path", "")) for change in found or [])
        return [path for path in paths if path not in made_by_docker]

    async def recent_output(self, container_id: str, lines: int) -> str:
        """The last lines the container's terminal showed, escapes and all."""
        with _translated(container=container_id):
            chunks = await self._docker.containers.container(container_id).log(
                stdout=True, stderr=True, tail=lines
            )

        return "".join(chunks)

    async def follow_events(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        """Call ``on_event`` for each engine event about this server's containers.

        Returns when the stream ends (the engine restarted, or a proxy cut a quiet
        connection); what happened while it was down is not replayed, so the caller
        must re-read the state it cares about.
        """
        events = self._docker.events
        subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        filters = json.dumps({"type": ["container"], "label": [f"{LABEL_TMUX}={self.tmux}"]})

        async def stream() -> None:
            with _translated():
                await events.run(filters=filters)

        async with anyio.create_task_group() as tg:
            tg.start_soon(stream)

            while (event := await subscriber.get()) is not None:
                on_event(event)

            tg.cancel_scope.cancel()

    async def has_image(self, image: str) -> bool:
        """Whether the engine has this image already (``ubuntu`` means ``ubuntu:latest``)."""
        with _translated():
            try:
                await self._docker.images.inspect(image)
            except aiodocker.DockerError as exc:
                if exc.status != 404:
                    raise

                return False

        return True

    async def pull(self, image: str, on_progress: Callable[[dict[str, Any]], None]) -> None:
        """Pull an image, calling ``on_progress`` with each progress message of the engine."""
        with _translated(pulling=image):
            async for message in self._docker.images.pull(image, stream=True):
                on_progress(message)

    async def commit(self, container_id: str, repository: str, tag: str) -> str:
        """Save a container's filesystem as an image; returns the image id.

        dmux's labels are blanked in the image so that containers made from it are not
        mistaken for the one it was saved from.
        """
        blank = " ".join(f"{label}=" for label in (LABEL_NAME, LABEL_TMUX, LABEL_AUTO_PAUSE))

        with _translated(container=container_id, image=f"{repository}:{tag}"):
            result = await self._docker.containers.container(container_id).commit(
                repository=repository, tag=tag, changes=[f"LABEL {blank}"], pause=True
            )

        return str(result.get("Id", ""))


@asynccontextmanager
async def connect(tmux: str, environ: Mapping[str, str]) -> AsyncIterator[Engine]:
    """Open a connection to the engine the ``docker`` client would use."""
    endpoint = resolve(environ)
    connector = _tcp_connector(endpoint)
    docker = NegotiatingDocker(
        endpoint.url,
        connector=connector,
        timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT),
    )

    try:
        yield Engine(docker, tmux, endpoint)
    finally:
        with anyio.CancelScope(shield=True):
            await docker.close()

            if connector is not None:
                await connector.close()


def _tcp_connector(endpoint: Endpoint) -> aiohttp.TCPConnector | None:
    """dmux's own connector for tcp, so that aiodocker takes TLS from the endpoint alone.

    Given none, aiodocker would look for ``DOCKER_TLS_VERIFY`` in this process's
    environment, which is not the caller's when a watcher runs the command.
    """
    if not endpoint.host.startswith("tcp://"):
        return None

    context = endpoint.ssl_context()
    return aiohttp.TCPConnector(ssl=context if context is not None else True)


@dataclass(frozen=True)
class _About:
    """What a request was about, to say in the user's terms what its failure means."""

    container: str | None = None
    image: str | None = None
    name: str | None = None
    pulling: str | None = None


@contextmanager
def _translated(
    container: str | None = None, image: str | None = None, name: str | None = None,
    pulling: str | None = None,
) -> Iterator[None]:
    """Turn an aiodocker error into a dmux error that says what to do."""
    try:
        yield
    except aiodocker.DockerError as exc:
        raise _explain(exc, _About(container, image, name, pulling)) from exc
    except TimeoutError as exc:
        raise EngineUnreachable(
            f"cannot reach the Docker engine: no answer within {CONNECT_TIMEOUT:g} s "
            "(is it running, and are DOCKER_HOST or the Docker context right?)"
        ) from exc
    except (OSError, aiohttp.ClientError) as exc:
        raise EngineUnreachable(f"lost the Docker engine: {exc!r}") from exc


def _explain(exc: aiodocker.DockerError, about: _About) -> Exception:
    message = " ".join(str(exc.message).split())  # one line, whatever the engine sent
    unreachable = _unreachable(exc.status, message)

    if unreachable or about.pulling:
        # dmux sends no registry credentials: the docker client does, from its own login.
        return unreachable or UserError(
            f"cannot pull {about.pulling!r}: {message} (check the name and the registry; "
            f"an image behind `docker login` needs `docker pull {about.pulling}` first)"
        )

    if exc.status == 404 and about.container and "No such container" in message:
        return ContainerGone(
            f"container {about.container[:12]} no longer exists (removed outside dmux?)"
        )

    if exc.status == 404 and about.image:
        return UserError(f"image {about.image!r} not found locally: {message} "
                         f"(build it or `docker pull {about.image}` first)")

    if exc.status == 409 and about.name and "already in use" in message:
        return NameTaken(f"the name {about.name!r} is already taken by another container")

    if exc.status in (400, 409) or message.startswith(_REFUSED_INPUT):
        return UserError(message)

    return EngineError(f"Docker engine error {exc.status}: {message}")


def _with_parents(paths: list[str]) -> set[str]:
    """Each absolute path and every folder above it, ``/`` excluded."""
    found: set[str] = set()

    for path in paths:
        parts = [part for part in path.split("/") if part] if path.startswith("/") else []
        found.update("/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1))

    return found


def _unreachable(status: int, message: str) -> EngineUnreachable | None:
    """The engine did not answer, or answered that it wants TLS."""
    if status == _UNREACHABLE:
        return EngineUnreachable(f"cannot reach the Docker engine{_hint(message)}: {message}")

    if "HTTP request to an HTTPS server" in message:
        return EngineUnreachable(
            "the Docker engine speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH "
            "to the folder with ca.pem, cert.pem and key.pem, or use a Docker context"
        )

    return None


def _hint(message: str) -> str:
    if "ermission denied" in message:
        return " (permission denied: add yourself to the docker group)"

    if "SSL" in message or "certificate" in message:
        return (" (TLS failed: check the certificates in DOCKER_CERT_PATH or the Docker "
                "context, and that they name this host)")

    return "; is dockerd running?"
