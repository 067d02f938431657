"""The Docker side: every Engine API call dmux makes, with errors turned into dmux's own.

aiodocker speaks the API; this module only names the calls dmux needs and says, in the
user's terms, what a failure means.
"""

import json
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiodocker
import aiohttp
import anyio

from dmux_async.errors import (
    ContainerGone,
    EngineError,
    EngineUnreachable,
    UserError,
)
from dmux_async.model import LABEL_AUTO_PAUSE, LABEL_NAME, LABEL_TMUX, Container

# The engines dmux supports all speak 1.41; naming it saves a round trip per command.
API_VERSION = "v1.41"
_UNREACHABLE = 900
_LOCAL_SOCKETS = ("/run/docker.sock", "/var/run/docker.sock")
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

        return config


class Engine:
    """One connection to the Docker engine, scoped to the containers of one tmux server."""

    def __init__(self, docker: aiodocker.Docker, tmux: str, host: str) -> None:
        self._docker = docker
        self.tmux = tmux
        self.host = host  # for the ``docker`` client that attaches in a pane

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

    async def status(self, container_id: str) -> tuple[str, str]:
        """Docker's status of one container and the error it last reported, if any."""
        with _translated(container=container_id):
            data = await self._docker.containers.container(container_id).show()

        state = data.get("State") or {}
        return str(state.get("Status", "")), str(state.get("Error", ""))

    async def pause(self, container_id: str) -> None:
        with _translated(container=container_id):
            await self._docker.containers.container(container_id).pause()

    async def unpause(self, container_id: str) -> None:
        with _translated(container=container_id):
            await self._docker.containers.container(container_id).unpause()

    async def remove(self, container_id: str) -> None:
        """Remove a container in any state, paused included."""
        with _translated(container=container_id):
            await self._docker.containers.container(container_id).delete(force=True)

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


def engine_address(environ: Mapping[str, str]) -> str:
    """The engine the ``docker`` client would use: ``$DOCKER_HOST``, else the local socket."""
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"]

    for path in _LOCAL_SOCKETS:
        if os.path.exists(path):
            return f"unix://{path}"

    raise EngineUnreachable(
        "no Docker engine found (no /var/run/docker.sock): start dockerd or set DOCKER_HOST"
    )


@asynccontextmanager
async def connect(tmux: str, environ: Mapping[str, str]) -> AsyncIterator[Engine]:
    """Open a connection to the engine the ``docker`` client would use."""
    address = engine_address(environ)

    try:
        docker = aiodocker.Docker(url=address, api_version=API_VERSION)
    except ValueError as exc:
        raise UserError(f"cannot use DOCKER_HOST={address!r}: {exc}") from exc

    try:
        yield Engine(docker, tmux, address)
    finally:
        with anyio.CancelScope(shield=True):
            await docker.close()


@contextmanager
def _translated(
    container: str | None = None, image: str | None = None, name: str | None = None
) -> Iterator[None]:
    """Turn an aiodocker error into a dmux error that says what to do."""
    try:
        yield
    except aiodocker.DockerError as exc:
        raise _explain(exc, container, image, name) from exc
    except (OSError, aiohttp.ClientError) as exc:
        raise EngineUnreachable(f"lost the Docker engine: {exc!r}") from exc


def _explain(
    exc: aiodocker.DockerError, container: str | None, image: str | None, name: str | None
) -> Exception:
    message = str(exc.message).strip()

    if exc.status == _UNREACHABLE:
        hint = " (permission denied: add yourself to the docker group)" if (
            "ermission denied" in message) else "; is dockerd running?"
        return EngineUnreachable(f"cannot reach the Docker engine{hint}: {message}")

    if exc.status == 404 and container and "No such container" in message:
        return ContainerGone(f"container {container[:12]} no longer exists (removed outside dmux?)")

    if exc.status == 404 and image:
        return UserError(f"image {image!r} not found locally: {message} "
                         f"(build it or `docker pull {image}` first)")

    if exc.status == 409 and name and "already in use" in message:
        return UserError(f"the name {name!r} is already taken by another container")

    if exc.status in (400, 409):
        return UserError(message)

    return EngineError(f"Docker engine error {exc.status}: {message}")
