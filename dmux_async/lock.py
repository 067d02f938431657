"""One lock per tmux server that every change to its containers and panes is made under.

Between unpausing a container and tagging its new pane, the container runs with no pane; a
watcher that looked in that moment would freeze it again, and a second ``dmux start``
pressed at the same time would open a second pane. Commands and the watcher's reconcile
therefore take this lock, so each sees the other's work whole. It is an ``flock`` on a file
beside the tmux socket: the kernel releases it when its holder dies, however it dies.
"""

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from dmux_async.errors import UserError
from dmux_async.place import make_server_files

LOCK_TIMEOUT = 30.0
_POLL = 0.005


@asynccontextmanager
async def server_lock(socket_path: str) -> AsyncIterator[None]:
    """Hold the lock of one tmux server; polls, so that cancellation is prompt."""
    try:
        fd = os.open(make_server_files(socket_path) / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UserError(f"cannot keep dmux's lock beside the tmux socket: {exc}") from exc

    try:
        await _acquire(fd, socket_path)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


async def _acquire(fd: int, socket_path: str) -> None:
    with anyio.move_on_after(LOCK_TIMEOUT):
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                await anyio.sleep(_POLL)

    raise UserError(
        f"another dmux command on tmux server {socket_path} has held its lock for "
        f"{LOCK_TIMEOUT:g} s; try again when it finishes"
    )
