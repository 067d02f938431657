"""Where a command runs: which tmux server, which pane, and where dmux keeps its sockets.

tmux's own rules pick the server: ``-S PATH``, else ``-L NAME``, else the server named
by ``$TMUX``, else the default one. ``$TMUX_PANE`` only counts when ``$TMUX`` names
that same server; a stale ``$TMUX`` from a shell whose server died is not an error
until a command needs that server.
"""

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


def server_files(socket_path: str) -> Path:
    """The folder beside a tmux socket where dmux keeps that server's lock and watcher.

    It is derived from the socket alone, so every process that talks to one tmux server
    finds it, whatever its environment (a systemd service and a shell may disagree on
    ``$XDG_RUNTIME_DIR``). tmux's socket folder is private to its user.
    """
    return Path(f"{socket_path}.dmux")


def make_server_files(socket_path: str) -> Path:
    """Create :func:`server_files`, and tmux's own folder as tmux wants it (mode 0700).

    A watcher may start before any tmux server has made that folder; made with looser
    modes, tmux would refuse to use it.
    """
    folder = server_files(socket_path)
    folder.parent.mkdir(mode=0o700, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _socket_from_tmux_env(value: str) -> str | None:
    """``$TMUX`` is ``socket,pid,session``; the socket path may itself hold commas."""
    parts = value.rsplit(",", 2)
    return parts[0] if len(parts) == 3 and parts[0] else None
