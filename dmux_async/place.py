"""Where a command runs: which tmux server, which pane, and where dmux keeps its sockets.

tmux's own rules pick the server: ``-S PATH``, else ``-L NAME``, else the server named
by ``$TMUX``, else the default one. ``$TMUX_PANE`` only counts when ``$TMUX`` names
that same server; a stale ``$TMUX`` from a shell whose server died is not an error
until a command needs that server.
"""

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Place:
    """The tmux server a command talks to and the pane it was run from, if any."""

    socket_path: str
    pane: str | None
    target: str | None

    @property
    def anchor(self) -> str | None:
        """The tmux target new panes go beside: ``-t`` first, else the current pane."""
        return self.target or self.pane


def tmux_dir(environ: Mapping[str, str]) -> Path:
    """The folder tmux keeps its sockets in, as tmux computes it."""
    base = environ.get("TMUX_TMPDIR") or "/tmp"
    return Path(base) / f"tmux-{os.getuid()}"


def find_place(
    environ: Mapping[str, str],
    socket_name: str | None = None,
    socket_path: str | None = None,
    target: str | None = None,
) -> Place:
    """Resolve the tmux server and current pane like tmux's own commands do."""
    inside = _socket_from_tmux_env(environ.get("TMUX", ""))

    if socket_path:
        chosen = socket_path
    elif socket_name:
        chosen = str(tmux_dir(environ) / socket_name)
    elif inside:
        chosen = inside
    else:
        chosen = str(tmux_dir(environ) / "default")

    chosen = os.path.realpath(chosen)
    pane = environ.get("TMUX_PANE") if inside and os.path.realpath(inside) == chosen else None
    return Place(socket_path=chosen, pane=pane or None, target=target or None)


def runtime_dir(environ: Mapping[str, str]) -> Path:
    """dmux's private folder for watcher sockets and locks (created on demand)."""
    base = environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return Path(base) / f"dmux-{os.getuid()}"


def server_key(socket_path: str) -> str:
    """A short, file-name-safe key that names one tmux server."""
    return hashlib.sha256(socket_path.encode()).hexdigest()[:16]


def _socket_from_tmux_env(value: str) -> str | None:
    """``$TMUX`` is ``socket,pid,session``; the socket path may itself hold commas."""
    parts = value.rsplit(",", 2)
    return parts[0] if len(parts) == 3 and parts[0] else None
