#!/usr/bin/env python3
"""Time ``dmux watch``: pane close to pause, tmux kill-server to all paused, and idle cost.

    python3 bench/watch.py [--closes 100] [--containers 100] [--idle 60] [--raw 20]
                           [--baseline-closes 30]

Everything runs against a private tmux server (``tmux -L dmux-bench-<hex>``) and the offline
test image. ``--containers`` dmux containers are made by hand (``docker run -dit --name N
--label dmux.name=N --label dmux.tmux=SOCKET``), each shown in a window of its own that
runs ``docker attach`` and carries dmux's pane tags, as ``dmux init`` leaves them.

A pause is timed from ``time.time_ns()`` taken right before ``tmux kill-pane`` (or
``tmux kill-server``) to the ``timeNano`` of the engine's pause event, read from a
``docker events`` subprocess. Phases, in this order:

1. raw operations, no watcher running: ``docker pause`` (CLI), the Engine API pause alone,
   the two reads a reconcile makes (the engine's container list, ``tmux list-panes``); the
   same steps through dmux's own code in this process, and a whole reconcile; then pausing
   all containers at once by hand (one CLI call; the API, 32 at a time);
2. ``dmux -L NAME watch``: ``--closes`` pane closes, one container each, each restored
   (new tagged pane, unpause, ``docker attach``) before the next, once the watcher is
   quiet again (its log stops growing);
3. the same watcher idle for ``--idle`` seconds: its CPU time and peak memory;
4. ``tmux kill-server`` with every container shown: time until all are paused;
5. the baseline, a naive watcher in ``sh`` (``while tmux wait-for ...; do docker ps;
   docker pause ...; done``) on the same hooks: ``--baseline-closes`` closes and a
   kill-server, timed the same way.

At the end the script removes every container it made, stops what it started (by pid) and
kills its tmux server, also when it fails or is interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import anyio
from _common import (
    IMAGE,
    ROOT,
    BenchError,
    Server,
    clean_env,
    ensure_image,
    load,
    nearest_rank,
    on_sigterm,
    progress,
    remove_labelled,
    remove_runtime_files,
    run,
    start_server,
    stop_process,
    tail,
    timed,
)

from dmux_async.engine import connect
from dmux_async.errors import DmuxError
from dmux_async.logs import configure
from dmux_async.model import LABEL_NAME, LABEL_TMUX, PANE_CONTAINER, PANE_NAME
from dmux_async.place import find_place
from dmux_async.watch.doorbell import CHANNEL, HOOK_INDEX, HOOKS
from dmux_async.watch.supervisor import Watcher

API_VERSION = "v1.41"
DETACH_KEYS = "ctrl-],ctrl-]"
PLACEHOLDER = ("sleep", "1000000")
PAUSES_AT_ONCE = 32  # what the watcher allows itself, for the raw bulk pause
MAKERS = 4  # parallel `docker run`
PAUSE_TIMEOUT = 5.0
ALL_PAUSED_TIMEOUT = 60.0
SETTLE = 0.25  # between two closes: lets the reconciles a restore causes finish,
QUIET = 0.15  # and then until the watcher has logged nothing for this long
QUIET_MAX = 2.0
WATCHER_READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
MAX_MISSES = 5
MIB = 1024

# A naive watcher: on each hook, pause every running dmux container that no pane shows.
BASELINE_SH = f"""\
#!/bin/sh
# Naive dmux watcher, for comparison: the same hooks and channel, the docker CLI.
sock=$1
while tmux -S "$sock" wait-for {CHANNEL}; do
    # Docker first, then tmux, as dmux does: a pane tagged in between is then seen.
    running=$(docker ps -q --no-trunc --filter status=running \\
              --filter "label={LABEL_TMUX}=$sock")
    shown=$(tmux -S "$sock" list-panes -a -F '#{{{PANE_CONTAINER}}}' 2>/dev/null)
    for id in $running; do
        case "$shown" in
            *"$id"*) ;;
            *) docker pause "$id" >/dev/null ;;
        esac
    done
done
"""


# --------------------------------------------------------------------------- samples


@dataclass
class Samples:
    """Durations of one operation, in seconds."""

    values: list[float] = field(default_factory=list)

    def cells(self) -> list[str]:
        """n, p50, p90, p99, max (nearest rank), in milliseconds."""
        if not self.values:
            return ["0", "-", "-", "-", "-"]

        return [str(len(self.values)),
                *(f"{nearest_rank(self.values, q) * 1000:.1f}" for q in (0.5, 0.9, 0.99)),
                f"{max(self.values) * 1000:.1f}"]

    def p50(self) -> float:
        return nearest_rank(self.values, 0.5)

    def p99(self) -> float:
        return nearest_rank(self.values, 0.99)


@dataclass
class Closes:
    """One close-to-pause series: latencies, the kill-pane calls, what went wrong."""

    latency: Samples = field(default_factory=Samples)
    kill_call: Samples = field(default_factory=Samples)
    misses: int = 0
    spurious: list[str] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0


@dataclass
class AllPaused:
    """Time from one action to the first and the last pause of every container."""

    first: float | None = None
    last: float | None = None
    paused: int = 0
    wanted: int = 0
    call: float | None = None  # the wall time of the call itself, when it is one call
    at: float = 0.0  # when the call was made (time.time())
    released: float | None = None  # kill-server: when tmux let a `wait-for` client go

    def row(self, label: str, target: str = "") -> list[str]:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f}"

        verdict = ""

        if target:
            met = self.last is not None and self.paused == self.wanted and self.last < 1.0
            verdict = f"{target}: {'ok' if met else 'MISSED'}"

        return [label, f"{self.paused}/{self.wanted}", ms(self.first), ms(self.last),
                ms(self.call), verdict]


@dataclass(frozen=True)
class Usage:
    """A process's CPU time so far (its own; its reaped children's) and its memory."""

    cpu: float
    children: float
    hwm_kib: int
    rss_kib: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is field 3, state
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        tick = os.sysconf("SC_CLK_TCK")
        status = {}

        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            status[key] = value.split()

        return cls((utime + stime) / tick, (cutime + cstime) / tick,
                   int(status["VmHWM"][0]), int(status["VmRSS"][0]))


@dataclass
class Report:
    """Everything measured, printed at the end."""

    raw: dict[str, Samples] = field(default_factory=dict)
    closes: dict[str, Closes] = field(default_factory=dict)
    all_paused: dict[str, AllPaused] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    idle: tuple[float, Usage, Usage] | None = None
    during_closes: tuple[Usage, Usage] | None = None
    reconciles: dict[str, Counter[str]] = field(default_factory=dict)
    watcher_stop: float | None = None
    not_paused: int = 0  # `docker unpause` refused with 'is not paused' after a pause
    load_start: str = ""

    def sample(self, name: str) -> Samples:
        return self.raw.setdefault(name, Samples())


# --------------------------------------------------------------------------- engine


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the engine's Unix socket, like ``curl --unix-socket``."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(self.timeout)
        conn.connect(self._path)
        self.sock = conn


def engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")

    if host.startswith("unix://"):
        return host.removeprefix("unix://")

    if host:
        raise BenchError(f"DOCKER_HOST={host}: this benchmark speaks to a local Unix socket")

    return "/var/run/docker.sock"


def api(method: str, path: str) -> bytes:
    """One Engine API request on a fresh connection; a failure is a :class:`BenchError`."""
    conn = UnixHTTPConnection(engine_socket())

    try:
        conn.request(method, f"/{API_VERSION}{path}")
        reply = conn.getresponse()
        body = reply.read()
    finally:
        conn.close()

    if reply.status >= 300:
        raise BenchError(f"{method} {path}: {reply.status} {body.decode(errors='replace')}")

    return body


class PauseEvents:
    """The engine's pause events for the bench's containers: id -> each pause's timeNano."""

    def __init__(self, socket_path: str, since_ns: int) -> None:
        self._times: dict[str, list[int]] = {}
        self.duplicates = 0  # the same event twice: tells a doubled event from a 2nd pause
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            ["docker", "events", "--format", "{{json .}}", "--filter", "type=container",
             "--filter", "event=pause", "--filter", f"label={LABEL_TMUX}={socket_path}",
             "--since", f"{since_ns // 10**9}.{since_ns % 10**9:09d}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=clean_env(),
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None

        for line in self.process.stdout:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                event = json.loads(line)
                container, at = str(event["id"]), int(event["timeNano"])

                with self._changed:
                    times = self._times.setdefault(container, [])

                    if at in times:
                        self.duplicates += 1
                    else:
                        times.append(at)

                    self._changed.notify_all()

    def first_after(self, ids: Collection[str], after_ns: int, timeout: float) -> dict[str, int]:
        """Each container's first pause at or after ``after_ns``: those seen in time."""
        deadline = time.monotonic() + timeout

        with self._changed:
            while True:
                found = {}

                for container in ids:
                    times = [t for t in self._times.get(container, []) if t >= after_ns]

                    if times:
                        found[container] = min(times)

                left = deadline - time.monotonic()

                if len(found) == len(ids) or left <= 0:
                    return found

                self._changed.wait(left)

    def between(self, start_ns: int, end_ns: int) -> set[tuple[str, int]]:
        """The pauses the engine reported in a time window: (container id, timeNano)."""
        with self._changed:
            return {(c, t) for c, ts in self._times.items() for t in ts if start_ns <= t <= end_ns}


# --------------------------------------------------------------------------- the set-up


@dataclass
class Shown:
    """One dmux container made by hand, and the pane that shows it."""

    name: str
    id: str
    pane: str = ""


@dataclass
class Bench:
    """What every phase works with."""

    server: Server
    env: dict[str, str]
    dmux: Path
    tag: str
    log_path: Path
    events: PauseEvents
    report: Report
    containers: list[Shown] = field(default_factory=list)
    watcher: subprocess.Popen[bytes] | None = None
    baseline: subprocess.Popen[bytes] | None = None
    temp_files: list[Path] = field(default_factory=list)
    turn: int = 0

    def tmux(self, *args: str) -> str:
        return self.server.tmux(*args)

    def next_target(self) -> str:
        """The containers in turn: none is paused again right after its unpause.

        Docker 20.10 applies containerd's paused/resumed events to its state later, so a
        pause soon after an unpause can be undone in its books by the late 'resumed'.
        """
        self.turn += 1
        return self.containers[self.turn % len(self.containers)].id

    def ids(self) -> list[str]:
        return [c.id for c in self.containers]


def make_containers(b: Bench, count: int) -> None:
    """Real dmux containers of the private server: dmux.name is the name, dmux.tmux the socket."""
    names = [f"dmux-bench-{b.tag}-{i:03d}" for i in range(count)]

    def make(name: str) -> Shown:
        out = run(["docker", "run", "-dit", "--name", name, "--label", f"{LABEL_NAME}={name}",
                   "--label", f"{LABEL_TMUX}={b.server.socket_path}", IMAGE], b.env)
        return Shown(name, out.strip())

    with ThreadPoolExecutor(MAKERS) as pool:
        b.containers = list(pool.map(make, names))


def attach_argv(c: Shown) -> list[str]:
    return ["docker", "attach", "--detach-keys", DETACH_KEYS, c.name]


def open_tagged(b: Bench, c: Shown, program: Sequence[str]) -> None:
    """A new window running ``program``, its pane tagged as ``dmux init`` tags it."""
    c.pane = b.tmux("new-window", "-d", "-P", "-F", "#{pane_id}", *program).strip()
    b.tmux("set-option", "-p", "-t", c.pane, PANE_CONTAINER, c.id, ";",
           "set-option", "-p", "-t", c.pane, PANE_NAME, c.name)


def show_all(b: Bench) -> None:
    """Unpause whatever is paused, then show every container in a tagged pane."""
    if paused := paused_now(b):
        unpause(b, paused)

    for c in b.containers:
        open_tagged(b, c, attach_argv(c))


def restore(b: Bench, c: Shown) -> None:
    """Show a paused container again: a tagged pane first, then unpause, then attach.

    Tagged before the unpause, the container is never running without a pane, so no
    watcher pauses it again; ``respawn-pane`` keeps the pane's options.
    """
    open_tagged(b, c, PLACEHOLDER)
    unpause(b, [c.id])
    b.tmux("respawn-pane", "-k", "-t", c.pane, *attach_argv(c))


def paused_now(b: Bench) -> list[str]:
    return run(["docker", "ps", "-q", "--filter", "status=paused",
                "--filter", f"label={LABEL_TMUX}={b.server.socket_path}"], b.env).split()


# --------------------------------------------------------------------------- phase 1: raw


STEPS = (
    "raw: docker pause (CLI, wall)",
    "raw: docker pause (CLI, to its event)",
    "raw: Engine API pause (http.client)",
    "dmux: Engine.pause()",
    "raw: Engine API list",
    "dmux: Engine.containers()",
    "raw: tmux list-panes -a (CLI)",
    "dmux: Tmux.layout()",
    "dmux: Watcher.reconcile(), nothing to do",
)


def raw_phase(b: Bench, rounds: int) -> None:
    """The steps a watcher is made of, timed alone, with no watcher running.

    Each by hand (the CLI, or the Engine API over a fresh connection), then through dmux's
    own code in this process (aiodocker, libtmux), then a whole reconcile.
    """
    filters = urllib.parse.quote(json.dumps({"label": [f"{LABEL_TMUX}={b.server.socket_path}"]}))
    list_format = f"#{{pane_id}}\t#{{{PANE_CONTAINER}}}\t#{{session_name}}\t#{{pane_dead}}"
    step = [b.report.sample(name).values for name in STEPS]

    for _ in range(rounds):
        target = b.next_target()
        t0 = time.time_ns()
        step[0].append(timed(["docker", "pause", target], b.env)[0])
        seen = b.events.first_after([target], t0, PAUSE_TIMEOUT)
        step[1].append((seen[target] - t0) / 1e9)
        unpause(b, [target])

        target = b.next_target()
        started = time.perf_counter()
        api("POST", f"/containers/{target}/pause")
        step[2].append(time.perf_counter() - started)
        unpause(b, [target])

        started = time.perf_counter()
        api("GET", f"/containers/json?all=1&filters={filters}")
        step[4].append(time.perf_counter() - started)
        step[6].append(timed(["tmux", "-L", b.server.name, "list-panes", "-a", "-F",
                              list_format], b.env)[0])

    configure(b.env, "json", "critical", stream=io.StringIO())  # dmux's logs: dropped
    watcher = Watcher(find_place(b.env, b.server.name), b.env)
    anyio.run(in_process, b, watcher, rounds)
    time.sleep(2.0)  # the late 'resumed' events land before the next pauses

    b.report.all_paused["raw: docker pause ID x N (one CLI call)"] = bulk_pause(
        b, lambda ids: run(["docker", "pause", *ids], b.env))
    b.report.all_paused[f"raw: Engine API pause x N ({PAUSES_AT_ONCE} at once)"] = bulk_pause(
        b, api_pause_all)


async def in_process(b: Bench, watcher: Watcher, rounds: int) -> None:
    """dmux's own calls for the same steps, and its whole reconcile (which finds nothing)."""
    samples = b.report.raw

    async def clock(name: str, step: Awaitable[object]) -> object:
        started = time.perf_counter()
        result = await step
        samples[name].values.append(time.perf_counter() - started)
        return result

    async with connect(watcher.place.socket_path, b.env) as engine:
        await watcher.reconcile(engine, "warm-up")

        for _ in range(rounds):
            target = b.next_target()
            await clock(STEPS[3], engine.pause(target))

            try:
                await engine.unpause(target)
            except DmuxError as exc:
                if "is not paused" not in str(exc):
                    raise

                b.report.not_paused += 1
            await clock(STEPS[5], engine.containers())
            await clock(STEPS[7], watcher.tmux.layout())

            if await clock(STEPS[8], watcher.reconcile(engine, "bench")):
                raise BenchError("an in-process reconcile acted on the bench's containers")


def api_pause_all(ids: list[str]) -> None:
    with ThreadPoolExecutor(PAUSES_AT_ONCE) as pool:
        list(pool.map(lambda i: api("POST", f"/containers/{i}/pause"), ids))


def bulk_pause(b: Bench, pause: Callable[[list[str]], object]) -> AllPaused:
    """Pause every container at once by hand; time to the first and last event."""
    ids = b.ids()
    t0 = time.time_ns()
    pause(ids)
    call = (time.time_ns() - t0) / 1e9
    result = all_paused_since(b, t0, ids, call)
    unpause(b, ids)
    time.sleep(2.0)
    return result


def unpause(b: Bench, ids: list[str]) -> None:
    """``docker unpause``, until Docker lists none of ``ids`` as paused.

    An 'is not paused' refusal right after a pause is Docker's late bookkeeping (see
    :meth:`Bench.next_target`): counted, and the container is taken as it says.
    """
    for _ in range(5):
        done = subprocess.run(["docker", "unpause", *ids], env=b.env, capture_output=True,
                              text=True, timeout=60, check=False)
        b.report.not_paused += done.stderr.count("is not paused")
        failed = [line for line in done.stderr.splitlines()
                  if line.strip() and "is not paused" not in line]

        if failed:
            raise BenchError(f"`docker unpause`: {' '.join(failed)}")

        still = set(paused_now(b))
        ids = [i for i in ids if i[:12] in still]

        if not ids:
            return

        time.sleep(0.2)

    raise BenchError(f"{len(ids)} containers stay paused after `docker unpause`")


def all_paused_since(b: Bench, t0: int, ids: list[str], call: float | None) -> AllPaused:
    seen = b.events.first_after(ids, t0, ALL_PAUSED_TIMEOUT)
    times = [(t - t0) / 1e9 for t in seen.values()]
    return AllPaused(min(times, default=None), max(times, default=None), len(seen), len(ids),
                     call)


# --------------------------------------------------------------------------- closes


def close_rounds(b: Bench, rounds: int) -> Closes:
    """Close one container's pane per round and time its pause; restore it after."""
    result = Closes(start=time.time())
    start_ns = time.time_ns()
    expected: set[tuple[str, int]] = set()
    kills: list[tuple[int, str]] = []

    for i in range(rounds):
        c = b.containers[i % len(b.containers)]
        t0 = time.time_ns()
        subprocess.run(["tmux", "-L", b.server.name, "kill-pane", "-t", c.pane], env=b.env,
                       capture_output=True, check=False)
        kills.append((t0, c.name))
        result.kill_call.values.append((time.time_ns() - t0) / 1e9)
        seen = b.events.first_after([c.id], t0, PAUSE_TIMEOUT)

        if c.id in seen:
            result.latency.values.append((seen[c.id] - t0) / 1e9)
            expected.add((c.id, seen[c.id]))
            restore(b, c)
        else:
            result.misses += 1
            progress(f"close {i}: no pause of {c.name} within {PAUSE_TIMEOUT:g} s")

            if result.misses > MAX_MISSES:
                raise BenchError(f"{result.misses} closes were never followed by a pause")

            with contextlib.suppress(BenchError):
                b.tmux("kill-pane", "-t", c.pane)

            show_one(b, c)

        settle(b)

    names = {c.id: c.name for c in b.containers}

    for container, at in sorted(b.events.between(start_ns, time.time_ns()) - expected):
        t0, closed = max((k for k in kills if k[0] <= at), default=(start_ns, "none"))
        result.spurious.append(f"{names.get(container, container[:12])} paused "
                               f"{(at - t0) / 1e6:.0f} ms after closing {closed}'s pane")

    result.end = time.time()
    return result


def settle(b: Bench) -> None:
    """Let the reconciles a restore causes end: ``SETTLE``, then until the log is quiet.

    A restore (unpause, ``docker attach``, its resize) rings the watcher several times; a
    close timed during those reconciles would measure them too.
    """
    time.sleep(SETTLE)

    if b.watcher is None:
        return

    deadline = time.monotonic() + QUIET_MAX
    previous = -1

    while time.monotonic() < deadline:
        current = b.log_path.stat().st_size

        if current == previous:
            return

        previous = current
        time.sleep(QUIET)


def show_one(b: Bench, c: Shown) -> None:
    """After a missed round: the container running and shown, whatever its state was."""
    open_tagged(b, c, PLACEHOLDER)

    with contextlib.suppress(BenchError):
        run(["docker", "unpause", c.id], b.env)

    b.tmux("respawn-pane", "-k", "-t", c.pane, *attach_argv(c))


def kill_server(b: Bench) -> AllPaused:
    """``tmux kill-server`` with every container shown: time until all are paused."""
    if paused := paused_now(b):
        progress(f"kill-server: {len(paused)} containers were paused already")

    running = [i for i in b.ids() if i[:12] not in paused]
    probe = WaitFor(b)
    t0 = time.time_ns()
    run(["tmux", "-L", b.server.name, "kill-server"], b.env)
    call = (time.time_ns() - t0) / 1e9
    result = all_paused_since(b, t0, running, call)
    result.wanted = len(b.containers)
    result.at = t0 / 1e9
    released = probe.exited(STOP_TIMEOUT)
    result.released = None if released is None or released < t0 else (released - t0) / 1e9
    Path(b.server.socket_path).unlink(missing_ok=True)  # tmux 3.3 leaves it behind
    return result


class WaitFor:
    """A ``tmux wait-for`` client of the bench's own: when tmux lets it go after kill-server.

    tmux releases waiting clients while it exits; no hook runs then, so this is the
    earliest moment a watcher woken by ``wait-for`` can learn that the server is gone.
    """

    def __init__(self, b: Bench) -> None:
        self.process = subprocess.Popen(
            ["tmux", "-L", b.server.name, "wait-for", f"dmux-bench-{b.tag}"], env=b.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.at: int | None = None
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()
        time.sleep(0.2)  # connected and waiting

    def _wait(self) -> None:
        self.process.wait()
        self.at = time.time_ns()

    def exited(self, timeout: float) -> int | None:
        """When the client exited (time.time_ns()); killed, by pid, if it has not."""
        self._thread.join(timeout)

        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            return None

        return self.at


# --------------------------------------------------------------------------- the watcher


def start_watcher(b: Bench) -> None:
    """``dmux -L NAME watch --log-format json --log-level debug``, until it reconciled."""
    since = time.time()

    with open(b.log_path, "ab") as log:
        b.watcher = subprocess.Popen(
            [sys.executable, str(b.dmux), "-L", b.server.name, "watch", "--log-format", "json",
             "--log-level", "debug"],
            env=b.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )

    deadline = time.monotonic() + WATCHER_READY_TIMEOUT

    while time.monotonic() < deadline:
        if b.watcher.poll() is not None:
            raise BenchError(f"`dmux watch` exited {b.watcher.returncode} before reconciling; "
                             f"log {b.log_path}:\n{tail(b.log_path)}")

        if any(e.event == "reconciled" and e.at >= since for e in read_log(b.log_path)):
            progress(f"watcher: pid {b.watcher.pid}, reconciled")
            return

        time.sleep(0.05)

    raise BenchError(f"`dmux watch` did not reconcile within {WATCHER_READY_TIMEOUT:g} s; "
                     f"log {b.log_path}:\n{tail(b.log_path)}")


def stop_watcher(b: Bench) -> float | None:
    """SIGTERM the watcher, by pid; the seconds it took to exit."""
    watcher, b.watcher = b.watcher, None

    if watcher is None:
        return None

    started = time.perf_counter()
    code = stop_process(watcher, "watcher", STOP_TIMEOUT)
    took = time.perf_counter() - started

    if code not in (0, -signal.SIGTERM):
        progress(f"watcher exited {code}; log:\n{tail(b.log_path)}")

    return took


@dataclass(frozen=True)
class LogEntry:
    at: float
    event: str
    reason: str


def read_log(path: Path) -> list[LogEntry]:
    """The watcher's JSON log lines (others, like a traceback, are skipped)."""
    entries = []

    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                data = json.loads(line)
                at = datetime.fromisoformat(str(data["timestamp"])).timestamp()
                entries.append(LogEntry(at, str(data["event"]), str(data.get("reason", ""))))

    return entries


def reconciles(b: Bench, start: float, end: float) -> Counter[str]:
    """The watcher's reconciles in a time window, by what woke it."""
    return Counter(e.reason for e in read_log(b.log_path)
                   if e.event == "reconciled" and start <= e.at <= end)


def pausing_reasons(b: Bench, start: float, end: float) -> Counter[str]:
    """What woke each reconcile that paused a container (it logs after its pauses)."""
    woke: Counter[str] = Counter()
    pending = 0

    for e in read_log(b.log_path):
        if not start <= e.at <= end:
            continue

        if e.event == "container_paused":
            pending += 1
        elif e.event == "reconciled" and pending:
            woke[e.reason] += pending
            pending = 0

    return woke


def kill_breakdown(b: Bench, t0: float) -> str:
    """What the watcher logged after ``tmux kill-server``, from the call."""
    after = [e for e in read_log(b.log_path) if e.at >= t0]
    gone = [e.at for e in after if e.event == "tmux_server_gone"]
    paused = [e.at for e in after if e.event == "container_paused"]
    woken = Counter(e.reason for e in after if e.event == "reconciled")

    def ms(times: list[float], pick: Callable[[list[float]], float]) -> str:
        return f"+{(pick(times) - t0) * 1000:.0f} ms" if times else "never"

    return (f"watcher log after kill-server: tmux_server_gone {ms(gone, min)}, "
            f"container_paused {len(paused)}x, first {ms(paused, min)}, last {ms(paused, max)} "
            f"(logged once each pause call returned); reconciles {dict(woken)}")


def stop_breakdown(b: Bench) -> str:
    """signal_received to watcher_stopped in the watcher's log, against the exit time."""
    entries = read_log(b.log_path)
    signalled = [e.at for e in entries if e.event == "signal_received"]
    stopped = [e.at for e in entries if e.event == "watcher_stopped"]

    if not (signalled and stopped):
        return "watcher log: no signal_received / watcher_stopped"

    return (f"watcher log: signal_received -> watcher_stopped "
            f"{(stopped[-1] - signalled[-1]) * 1000:.0f} ms (the rest of the exit time is "
            "after its last log line)")


def watcher_phases(b: Bench, closes: int, idle: float) -> None:
    r = b.report
    start_watcher(b)
    assert b.watcher is not None
    pid = b.watcher.pid
    time.sleep(1.0)  # the engine connection's own reconcile

    if paused := paused_now(b):
        raise BenchError(f"the watcher paused {len(paused)} shown containers at start-up")

    progress(f"phase 2: {closes} pane closes with the watcher")
    before = Usage.of(pid)
    r.closes["dmux watch"] = result = close_rounds(b, closes)
    r.during_closes = before, Usage.of(pid)
    r.reconciles["during the closes and restores"] = reconciles(b, result.start, result.end)
    r.reconciles["the ones that paused a closed pane's container"] = pausing_reasons(
        b, result.start, result.end)

    progress(f"phase 3: the watcher idle for {idle:g} s")
    time.sleep(2.0)
    start, before = time.time(), Usage.of(pid)
    time.sleep(idle)
    r.idle = idle, before, Usage.of(pid)
    r.reconciles["while idle"] = reconciles(b, start, time.time())

    progress(f"phase 4: tmux kill-server with {len(b.containers)} shown")
    start = time.time()
    r.all_paused["dmux watch"] = killed = kill_server(b)
    time.sleep(0.5)
    r.notes.append(kill_breakdown(b, killed.at))
    r.reconciles["after kill-server (0.5 s)"] = reconciles(b, start, time.time())
    r.notes.append(f"watcher peak memory at the end (VmHWM): {Usage.of(pid).hwm_kib / MIB:.1f} MiB")
    r.watcher_stop = stop_watcher(b)
    r.notes.append(stop_breakdown(b))


# --------------------------------------------------------------------------- the baseline


def install_hooks(b: Bench) -> None:
    """The hooks ``dmux watch`` installs, for the shell loop."""
    commands: list[str] = []

    for hook in HOOKS:
        commands += ["set-hook", "-g", f"{hook}[{HOOK_INDEX}]", f"wait-for -S {CHANNEL}", ";"]

    b.tmux(*commands[:-1])


def baseline_phase(b: Bench, closes: int) -> None:
    """The naive shell watcher: a new server on the same socket, the same closes."""
    b.server = start_server(b.server.name)
    show_all(b)
    install_hooks(b)
    fd, name = tempfile.mkstemp(prefix=f"dmux-bench-{b.tag}-", suffix=".sh")
    script = Path(name)
    b.temp_files.append(script)

    with os.fdopen(fd, "w") as handle:
        handle.write(BASELINE_SH)

    with open(b.log_path.with_suffix(".sh.log"), "ab") as log:
        b.baseline = subprocess.Popen(["sh", str(script), b.server.socket_path], env=b.env,
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                      start_new_session=True)

    b.tmux("wait-for", "-S", CHANNEL)  # one pass over the state, finding nothing to do
    time.sleep(1.0)

    if paused := paused_now(b):
        raise BenchError(f"the shell baseline paused {len(paused)} shown containers")

    progress(f"phase 5: {closes} pane closes with the shell baseline")
    b.report.closes["sh loop (baseline)"] = close_rounds(b, closes)
    time.sleep(2.0)  # Docker's late events from the last restore land first
    progress(f"phase 5: tmux kill-server with {len(b.containers)} shown, shell baseline")
    b.report.all_paused["sh loop (baseline)"] = kill_server(b)
    stop_baseline(b)


def stop_baseline(b: Bench) -> None:
    """The loop ends by itself once its server is gone; else SIGTERM its process group."""
    loop, b.baseline = b.baseline, None

    if loop is None:
        return

    try:
        loop.wait(2.0)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(loop.pid, signal.SIGTERM)  # its own session: the loop and its tmux

        loop.wait(STOP_TIMEOUT)


# --------------------------------------------------------------------------- clean-up


def clean_up(b: Bench) -> None:
    """Stop what was started, remove every container made, kill the private tmux server."""
    steps: list[Callable[[], object]] = [
        lambda: stop_watcher(b),
        lambda: stop_baseline(b),
        lambda: remove_labelled(f"{LABEL_TMUX}={b.server.socket_path}"),
        lambda: stop_process(b.events.process, "docker events", STOP_TIMEOUT),
        lambda: b.tmux("kill-server"),
    ]

    for step in steps:
        try:
            step()
        except (BenchError, OSError, subprocess.SubprocessError) as exc:
            if "no server running" not in str(exc) and "error connecting" not in str(exc):
                progress(f"clean-up: {exc}")

    Path(b.server.socket_path).unlink(missing_ok=True)
    remove_runtime_files(b.env, b.server.name, b.server.socket_path)

    for path in b.temp_files:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- report


def table(rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> Iterator[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    for n, row in enumerate(rows):
        cells = [c.rjust(w) if i in right and n else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        yield "  ".join(cells).rstrip()

        if n == 0:
            yield "  ".join("-" * w for w in widths)


def close_verdict(closes: Closes) -> str:
    if not closes.latency.values:
        return "p50 < 60 ms, p99 < 150 ms: no samples"

    p50 = "ok" if closes.latency.p50() < 0.060 else "MISSED"
    p99 = "ok" if closes.latency.p99() < 0.150 and not closes.misses else "MISSED"
    return f"p50 < 60 ms: {p50}; p99 < 150 ms: {p99}"


def print_latencies(r: Report, count: int) -> None:
    print("\n1. pane close -> container paused (time.time_ns() before `tmux kill-pane` to the "
          "pause event's timeNano), ms, nearest rank")
    rows = [["", "n", "p50", "p90", "p99", "max", "target"]]

    for label, closes in r.closes.items():
        rows.append([f"close -> paused, {label}", *closes.latency.cells(), close_verdict(closes)])

    for label, closes in r.closes.items():
        rows.append([f"  `tmux kill-pane` call itself ({label})", *closes.kill_call.cells(), ""])

    for step, samples in r.raw.items():
        named = step.replace("API list", f"API list, {count} containers")
        rows.append([named, *samples.cells(), ""])

    print("\n".join(table(rows, right=range(1, 6))))

    for label, closes in r.closes.items():
        print(f"  {label}: {closes.misses} closes without a pause, "
              f"{len(closes.spurious)} pauses of containers whose pane was not closed "
              f"{closes.spurious or ''}")

    print(f"  {floor(r)}")


def floor(r: Report) -> str:
    """The p50s of the steps one close takes with this watcher, summed (hook delivery aside)."""
    closes = r.closes.get("dmux watch")
    parts = [("`tmux kill-pane`", closes.kill_call if closes else Samples()),
             ("a reconcile with nothing to do", r.raw.get(STEPS[8], Samples())),
             ("Engine.pause()", r.raw.get(STEPS[3], Samples()))]

    if not all(samples.values for _, samples in parts):
        return "the steps of one close: not measured"

    total = sum(samples.p50() for _, samples in parts) * 1000
    return ("the steps one close needs, p50s summed: "
            + " + ".join(f"{name} {samples.p50() * 1000:.1f}" for name, samples in parts)
            + f" = {total:.1f} ms")


def print_all_paused(r: Report, count: int) -> None:
    print(f"\n2. all {count} containers paused at once, from the call (`tmux kill-server` or the "
          "raw pause) to the first and the last pause event, ms")
    rows = [["", "paused", "first", "last (all)", "call", "target"]]

    for label, result in r.all_paused.items():
        target = "" if label.startswith("raw") else "last < 1 s"
        rows.append(result.row(label if label.startswith("raw") else f"kill-server, {label}",
                               target))

    print("\n".join(table(rows, right=range(1, 5))))

    for label, result in r.all_paused.items():
        if result.released is not None:
            print(f"  kill-server, {label}: tmux let a waiting `tmux wait-for` client go "
                  f"+{result.released * 1000:.0f} ms after the call (raw: the earliest a "
                  "hook-woken watcher can notice)")


def print_usage(r: Report) -> None:
    if r.idle is None:
        return

    seconds, before, after = r.idle
    cpu = after.cpu - before.cpu
    print(f"\n3. the watcher idle for {seconds:g} s (/proc/PID/stat, /proc/PID/status)")
    rows = [["", "value", "target"],
            ["CPU time, utime+stime", f"{cpu:.2f} s",
             f"< 0.1 s: {'ok' if cpu < 0.1 else 'MISSED'}"],
            ["CPU time of its reaped children (tmux clients)",
             f"{after.children - before.children:.2f} s", ""],
            ["peak memory, VmHWM (since start)", f"{after.hwm_kib / MIB:.1f} MiB",
             f"< 60 MiB: {'ok' if after.hwm_kib < 60 * MIB else 'MISSED'}"],
            ["resident at the end, VmRSS", f"{after.rss_kib / MIB:.1f} MiB", ""]]

    if r.during_closes:
        first, last = r.during_closes
        n = len(r.closes["dmux watch"].latency.values) or 1
        rows.append(["phase 2, CPU per close + restore (self + children)",
                     f"{(last.cpu - first.cpu) * 1000 / n:.1f} + "
                     f"{(last.children - first.children) * 1000 / n:.1f} ms", ""])

    print("\n".join(table(rows)))


def print_report(r: Report, count: int) -> None:
    print(f"\nload average: {r.load_start} at the start, {load()} at the end (1, 5, 15 min; "
          f"{os.cpu_count()} CPUs)")
    print_latencies(r, count)
    print_all_paused(r, count)
    print_usage(r)

    if r.reconciles:
        print("\nthe watcher's reconciles (its `reconciled` log lines), by what woke it:")

        for label, counted in r.reconciles.items():
            shown = ", ".join(f"{reason} {n}" for reason, n in counted.most_common()) or "none"
            print(f"  {label}: {sum(counted.values())} ({shown})")

    if r.watcher_stop is not None:
        print(f"\nwatcher exit after SIGTERM: {r.watcher_stop * 1000:.0f} ms")

    for note in r.notes:
        print(note)

    if r.not_paused:
        print(f"Docker refused {r.not_paused} unpause(s) of just-paused containers with 'is "
              "not paused' (its state lags containerd's events under load)")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--closes", type=int, default=100, help="pane closes with the watcher")
    parser.add_argument("--containers", type=int, default=100, help="dmux containers alive")
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds measured")
    parser.add_argument("--raw", type=int, default=20, help="rounds of each raw operation")
    parser.add_argument("--baseline-closes", type=int, default=30,
                        help="pane closes with the naive shell watcher (0: skip it)")
    args = parser.parse_args(argv)

    if min(args.closes, args.containers, args.raw) < 1 or args.idle < 0 or (
            args.baseline_closes < 0):
        parser.error("--closes, --containers and --raw must be >= 1, the others >= 0")

    return args


def describe(dmux: Path, server: Server, count: int) -> str:
    """What ran: dmux's source state, tmux, Docker, the machine."""
    head = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).strip()
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "dmux_async"]).split("\n")
    changed = sum(1 for line in dirty if line.strip())
    tmux = run(["tmux", "-V"]).strip()
    docker = run(["docker", "version", "--format", "{{.Server.Version}}"]).strip()
    return (f"dmux {dmux} (python {sys.executable}); dmux_async at {head}"
            f"{f' + {changed} uncommitted file(s)' if changed else ''}; {tmux}; Docker {docker}; "
            f"image {IMAGE}; tmux -L {server.name} ({server.socket_path}); {count} containers; "
            f"{os.cpu_count()} CPUs; load {load()}")


def run_phases(b: Bench, args: argparse.Namespace) -> None:
    progress(f"set-up: {args.containers} containers, each in a tagged window")
    make_containers(b, args.containers)
    show_all(b)

    progress(f"phase 1: raw operations, {args.raw} rounds, then all at once")
    raw_phase(b, args.raw)
    watcher_phases(b, args.closes, args.idle)

    if args.baseline_closes:
        baseline_phase(b, args.baseline_closes)

    if b.events.duplicates:
        b.report.notes.append(f"docker events delivered {b.events.duplicates} pause events "
                              "twice (counted once)")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    dmux = Path(sys.executable).parent / "dmux"

    if not dmux.exists():
        progress(f"bench: no {dmux} (pip install -e .)")
        return 2

    signal.signal(signal.SIGTERM, on_sigterm)
    began = time.perf_counter()
    ensure_image()
    name = f"dmux-bench-{uuid.uuid4().hex[:10]}"
    server = start_server(name)
    env = clean_env()
    log_fd, log_path = tempfile.mkstemp(prefix=f"{name}-watch-", suffix=".log")
    os.close(log_fd)
    events = PauseEvents(server.socket_path, time.time_ns())
    b = Bench(server, env, dmux, name.removeprefix("dmux-bench-"), Path(log_path), events,
              Report(load_start=load()))

    try:
        print(describe(dmux, server, args.containers), flush=True)
        run_phases(b, args)
    except BenchError as exc:
        print(f"\nbench stopped: {exc}")
        print_report(b.report, args.containers)
        return 1
    finally:
        clean_up(b)
        progress(f"done in {time.perf_counter() - began:.0f} s (load {load()}); "
                 f"watcher log: {log_path}")

    print_report(b.report, args.containers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
