"""The ``dmux`` entry point: hand the command to a running watcher, else run it here.

Importing the Docker and tmux libraries costs several hundred milliseconds, more than
the work of ``dmux stop`` itself. A running ``dmux watch`` has them loaded, so this module
uses only the standard library: it sends the command line, environment and folder over the
watcher's Unix socket and prints the reply. With no watcher (or one that declines), the
command runs in this process, with the same result, only slower.
"""

import json
import os
import socket
import sys
from collections.abc import Mapping

from dmux_async.place import find_place, server_files

# Commands a watcher may run for us: quick, non-interactive, same result either way.
HANDED_OVER = frozenset({"init", "stop", "start", "delete", "save", "ls", "exec", "status"})
_GLOBAL_OPTIONS = frozenset({"-L", "--socket-name", "-S", "--socket-path"})
REPLY_LIMIT = 16 * 1024 * 1024


def main() -> int:
    argv = sys.argv[1:]
    reply = hand_over(argv, os.environ, os.getcwd())

    if reply is None:
        from dmux_async.cli import main as run_here

        return run_here()

    sys.stdout.write(str(reply.get("stdout", "")))
    sys.stderr.write(str(reply.get("stderr", "")))
    code = reply.get("code", 1)
    return code if isinstance(code, int) else 1


def watcher_socket(environ: Mapping[str, str], socket_name: str | None,
                   socket_path: str | None) -> str:
    """Where the watcher of the tmux server these options name listens."""
    place = find_place(environ, socket_name, socket_path)
    return str(server_files(place.socket_path) / "watch.sock")


def hand_over(argv: list[str], environ: Mapping[str, str], cwd: str) -> dict[str, object] | None:
    """Ask the watcher to run ``argv``; ``None`` when it cannot (then run it here)."""
    options = _global_options(argv)

    if options is None or environ.get("DMUX_NO_WATCHER"):
        return None

    path = watcher_socket(environ, options.get("-L"), options.get("-S"))
    request: dict[str, object] = {"argv": argv, "environ": dict(environ), "cwd": cwd}

    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        conn.close()
        return None  # no watcher: run it here

    try:
        return _exchange(conn, request)
    except (OSError, ValueError) as exc:
        # The watcher may have acted already: running the command again could do it twice.
        message = f"dmux: the watcher at {path} did not reply ({exc}); see its log\n"
        return {"code": 3, "stderr": message}


def _global_options(argv: list[str]) -> dict[str, str] | None:
    """The -L/-S values before a handed-over command, or ``None`` for anything else."""
    found: dict[str, str] = {}
    i = 0

    while i + 1 < len(argv) and argv[i] in _GLOBAL_OPTIONS:
        key = {"--socket-name": "-L", "--socket-path": "-S"}.get(argv[i], argv[i])
        found[key] = argv[i + 1]
        i += 2

    rest = argv[i:]

    if not rest or rest[0] not in HANDED_OVER or "--help" in rest:
        return None

    if rest[0] == "delete" and sys.stdin.isatty():
        return None  # it may have to ask: only this process has the terminal

    return found


def _exchange(conn: socket.socket, request: dict[str, object]) -> dict[str, object] | None:
    with conn:
        conn.sendall(json.dumps(request).encode() + b"\n")
        conn.shutdown(socket.SHUT_WR)
        data = _read_all(conn)

    reply = json.loads(data)

    if not isinstance(reply, dict) or reply.get("declined"):
        return None

    return reply


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    size = 0

    while chunk := conn.recv(65536):
        chunks.append(chunk)
        size += len(chunk)

        if size > REPLY_LIMIT:
            raise ValueError("reply too large")

    return b"".join(chunks)
