"""What the benchmarks share: running commands, the private tmux server, the test image.

Imported as a top-level module: ``python3 bench/X.py`` puts ``bench/`` on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "dmux-test/busybox:1"
CALL_TIMEOUT = 60.0


class BenchError(Exception):
    """Something the benchmark cannot go on from: a failed call, or dmux misbehaving."""


# --------------------------------------------------------------------------- processes


def run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Run one command and return its stdout; a failure is a :class:`BenchError`."""
    done = subprocess.run(
        list(argv), capture_output=True, text=True, env=env, timeout=CALL_TIMEOUT, check=False
    )

    if done.returncode != 0:
        raise BenchError(
            f"`{' '.join(argv)}` exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()}"
        )

    return done.stdout


def timed(argv: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[float, str]:
    """Wall time of one command, until it returns, and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        list(argv), capture_output=True, text=True, env=env, timeout=CALL_TIMEOUT, check=False
    )
    elapsed = time.perf_counter() - started

    if done.returncode != 0:
        raise BenchError(
            f"`{' '.join(argv)}` exited {done.returncode} after {elapsed * 1000:.0f} ms\n"
            f"  stdout: {done.stdout.strip()!r}\n  stderr: {done.stderr.strip()!r}"
        )

    return elapsed, done.stdout


def clean_env() -> dict[str, str]:
    """This process's environment without anything tying it to another tmux or watcher."""
    env = dict(os.environ)

    for key in ("TMUX", "TMUX_PANE", "DMUX_NO_WATCHER", "DMUX_DEBUG"):
        env.pop(key, None)

    return env


def stop_process(process: subprocess.Popen[Any], what: str, timeout: float) -> int:
    """SIGTERM one process this script started, by pid, wait; SIGKILL if it ignores it."""
    if process.poll() is not None:
        return process.returncode

    process.send_signal(signal.SIGTERM)

    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        progress(f"{what} (pid {process.pid}) ignored SIGTERM for {timeout:g} s: SIGKILL")
        process.kill()
        return process.wait()


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, so that the clean-up in ``finally`` runs."""
    raise SystemExit(128 + signum)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews the timings."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    return ""


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.9 for p90) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --------------------------------------------------------------------------- the set-up


@dataclass(frozen=True)
class Server:
    """The private tmux server everything runs against."""

    name: str
    socket_path: str
    pid: str
    pane: str

    def tmux(self, *args: str) -> str:
        return run(["tmux", "-L", self.name, *args], clean_env())

    def panes(self) -> set[str]:
        return set(self.tmux("list-panes", "-a", "-F", "#{pane_id}").split())


def start_server(name: str) -> Server:
    """``tmux -L NAME -f /dev/null new-session -d -s main -x 250 -y 80``, never the default."""
    env = clean_env()
    run(["tmux", "-L", name, "-f", "/dev/null", "new-session", "-d", "-s", "main",
         "-x", "250", "-y", "80"], env)
    shown = run(["tmux", "-L", name, "display-message", "-p", "-t", "main",
                 "#{socket_path}\t#{pid}\t#{pane_id}"], env)
    socket_path, pid, pane = shown.strip().split("\t")
    return Server(name, socket_path, pid, pane)


def ensure_image() -> str:
    """Build the offline test image with tests/images.py (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("dmux_bench_images", ROOT / "tests" / "images.py")

    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {ROOT / 'tests' / 'images.py'}")

    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ensure: Callable[[str], str] = module.ensure_test_image
    return ensure(IMAGE)


# --------------------------------------------------------------------------- clean-up


def remove_labelled(label: str) -> None:
    ids = run(["docker", "ps", "-aq", "--filter", f"label={label}"]).split()

    if ids:
        run(["docker", "rm", "-f", *ids])


def remove_runtime_files(env: Mapping[str, str], server_name: str, socket_path: str) -> None:
    """dmux's lock and (stale) watcher socket for the private server, nothing else.

    Newer dmux keeps them in a folder beside the tmux socket (``SOCKET.dmux``), older dmux
    in its runtime folder: whichever ``watcher_socket`` names, and that folder.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    from dmux_async.client import watcher_socket

    sock = Path(watcher_socket(env, server_name, None))
    beside = Path(f"{socket_path}.dmux")

    if beside.is_dir() and not beside.is_symlink():
        shutil.rmtree(beside, ignore_errors=True)

    for path in (sock, sock.with_suffix(".lock"), sock.with_suffix(".watch.lock")):
        path.unlink(missing_ok=True)
