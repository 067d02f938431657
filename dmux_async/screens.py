"""What a container's pane last showed, kept so that a resumed pane does not open blank.

``docker attach`` shows nothing until the program in the container draws again. So
``dmux stop`` keeps the pane's screen in the tmux server's dmux folder, and the pane that
``dmux start`` opens prints it before attaching. When no screen was kept (the pane was
closed some other way), the container's recent output stands in for it.
"""

import os
from contextlib import suppress
from pathlib import Path

from dmux_async.place import server_files

# Prints the kept screen once, then becomes the attach program. The file and the
# program's words arrive as separate arguments: the shell interprets neither.
_REPLAY = 'cat -- "$1" 2>/dev/null; rm -f -- "$1"; shift; exec "$@"'
_CATCH_UP = (
    'f=$1; since=$2; id=$3; keys=$4; shift 4; cat -- "$f" 2>/dev/null; rm -f -- "$f"; '
    '"$@" logs --since "$since" "$id" 2>/dev/null; exec "$@" attach --detach-keys "$keys" "$id"'
)
RECENT_LINES = 200


def screen_path(socket_path: str, container_id: str) -> Path:
    return server_files(socket_path) / "screens" / container_id


def keep(socket_path: str, container_id: str, screen: str) -> Path:
    """Store a screen for the next pane of this container; readable only by its user."""
    path = screen_path(socket_path, container_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    with os.fdopen(fd, "w") as file:
        file.write(screen)

    return path


def has_screen(socket_path: str, container_id: str) -> bool:
    return screen_path(socket_path, container_id).exists()


def forget(socket_path: str, container_id: str) -> None:
    with suppress(FileNotFoundError):
        screen_path(socket_path, container_id).unlink()


def replaying(path: Path, argv: list[str]) -> list[str]:
    """``argv`` preceded by printing the kept screen at ``path``."""
    return ["sh", "-c", _REPLAY, "dmux-replay", str(path), *argv]


def resuming(
    path: Path, docker: list[str], since: float, container_id: str, detach_keys: str
) -> list[str]:
    """Print the kept screen, catch up on what was printed since ``since``, then attach.

    A thawed program prints at once (its ``sleep`` ran out while it was frozen), before the
    attach connects; the container's log since the thaw holds those lines.
    """
    return ["sh", "-c", _CATCH_UP, "dmux-resume", str(path), f"{since:.3f}", container_id,
            detach_keys, *docker]
