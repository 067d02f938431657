#!/usr/bin/env python3
"""Time dmux's commands side by side with the same steps typed by hand.

    python3 bench/commands.py [--rounds N] [--containers 100]

Everything runs against a private tmux server (``tmux -L dmux-bench-<hex>``) and the offline
test image; at the end the script removes every container it made, stops the watcher it
started and kills its tmux server. dmux is run as a user inside tmux would run it: the
``dmux`` found on PATH, with ``TMUX`` and ``TMUX_PANE`` naming the private server's first
pane. Each call is timed with ``time.perf_counter`` around ``subprocess.run``, that is,
until the command returns (``dmux init`` returns once the container runs; ``docker run -d``
too).

Two modes for dmux: in-process (``DMUX_NO_WATCHER=1``), and handed to a ``dmux watch``
supervisor started for the private server, when this dmux has a ``watch`` command.

Phases, in this order (each timed operation interleaved with its hand-typed equivalent):

1. init / stop / start, in-process and by hand, one container each per round;
2. the same with a watcher running (no hand-typed column: it was measured in phase 1);
3. ``ls`` with ``--containers`` real dmux containers alive, in-process and by hand, then
   through a freshly started watcher.

A warm-up round, not counted, precedes each phase and checks what dmux did.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from _common import (
    CALL_TIMEOUT,
    IMAGE,
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

HAND_LABEL = "dmux-bench.hand"  # marks the hand-made containers, for the final clean-up
WATCHER_READY_TIMEOUT = 30.0
WATCHER_STOP_TIMEOUT = 10.0
ATTACH_TIMEOUT = 5.0
MAKERS = 4  # parallel `docker run` for the ls containers

INPROC, WATCHER, HAND = "inproc", "watcher", "hand"
T = TypeVar("T")


# --------------------------------------------------------------------------- samples


@dataclass
class Samples:
    """Wall times of one operation in one mode, in seconds."""

    values: list[float] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.values)

    def p90(self) -> float:
        """Nearest-rank 90th percentile."""
        return nearest_rank(self.values, 0.9)

    def cell(self) -> str:
        if not self.values:
            return "-"

        return f"{self.median() * 1000:6.0f} / {self.p90() * 1000:4.0f} ms"


@dataclass
class Results:
    """Samples by operation, then by mode (inproc, watcher, hand)."""

    table: dict[str, dict[str, Samples]] = field(default_factory=dict)
    recording: bool = True

    def add(self, operation: str, mode: str, seconds: float) -> None:
        if self.recording:
            self.table.setdefault(operation, {}).setdefault(mode, Samples()).values.append(seconds)

    def get(self, operation: str, mode: str) -> Samples:
        return self.table.get(operation, {}).get(mode, Samples())

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Warm-up calls: run, but not counted."""
        self.recording = False

        try:
            yield
        finally:
            self.recording = True


# --------------------------------------------------------------------------- the set-up


def interpreter_of(script: str) -> tuple[str, bool]:
    """The Python a console script runs with, and whether ``script`` is a (pyenv) shim."""
    with open(script, "rb") as handle:
        first = handle.readline().decode(errors="replace")

    words = first[2:].split() if first.startswith("#!") else []

    if words and "python" in Path(words[-1]).name:
        return words[-1], False

    pyenv = shutil.which("pyenv")

    if pyenv:  # a pyenv shim: a bash script that execs the real console script
        real = run([pyenv, "which", Path(script).name]).strip()

        if real and real != script:
            return interpreter_of(real)[0], True

    return sys.executable, True


@dataclass
class Bench:
    """What every phase works with."""

    server: Server
    dmux: str
    env: dict[str, str]
    results: Results
    tag: str
    watcher_log: Path
    watcher: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)

    def dmux_env(self, mode: str) -> dict[str, str]:
        env = dict(self.env)

        if mode == INPROC:
            env["DMUX_NO_WATCHER"] = "1"

        return env

    def call(self, operation: str, mode: str, *args: str) -> str:
        """Run ``dmux -L NAME ARGS`` and record its wall time."""
        elapsed, out = timed([self.dmux, "-L", self.server.name, *args], self.dmux_env(mode))
        self.results.add(operation, mode, elapsed)
        return out

    def hand(self, operation: str, *argvs: Sequence[str]) -> list[str]:
        """Run commands one after another as a user would; record their summed wall time."""
        total = 0.0
        outputs = []

        for argv in argvs:
            elapsed, out = timed(argv, self.env)
            total += elapsed
            outputs.append(out)

        self.results.add(operation, HAND, total)
        return outputs


# --------------------------------------------------------------------------- phase 1 and 2


@dataclass
class Made:
    """One container a round made and the panes that showed it."""

    id: str
    panes: list[str] = field(default_factory=list)


def hand_init(b: Bench) -> Made:
    started = time.perf_counter()
    _, out = timed(["docker", "run", "-dit", "--label", f"{HAND_LABEL}={b.tag}", IMAGE], b.env)
    made = Made(out.strip())
    b.extra.append(made.id)
    pane = split(b, made.id)
    b.results.add("init", HAND, time.perf_counter() - started)
    made.panes.append(pane)
    attached(b, pane)
    return made


def attached(b: Bench, pane: str) -> None:
    """Wait, untimed, until the pane's ``docker attach`` shows the shell.

    ``split-window`` returns before the client has attached, and ``docker attach`` refuses a
    container paused in that moment; a person typing would have seen the prompt first.
    """
    deadline = time.monotonic() + ATTACH_TIMEOUT

    while time.monotonic() < deadline:
        if b.server.tmux("capture-pane", "-p", "-t", pane).strip():
            return

        time.sleep(0.01)

    raise BenchError(f"`docker attach` in pane {pane} showed nothing in {ATTACH_TIMEOUT:g} s")


def split(b: Bench, container_id: str) -> str:
    """``tmux split-window -t PANE docker attach ID`` (with -P to learn the new pane)."""
    _, out = timed(["tmux", "-L", b.server.name, "split-window", "-t", b.server.pane,
                    "-P", "-F", "#{pane_id}", "docker", "attach", container_id], b.env)
    return out.strip()


def hand_start(b: Bench, made: Made) -> None:
    started = time.perf_counter()
    timed(["docker", "unpause", made.id], b.env)
    pane = split(b, made.id)
    b.results.add("start", HAND, time.perf_counter() - started)
    made.panes.append(pane)


def dmux_cycle(b: Bench, mode: str, check: bool) -> Made:
    """``dmux init``, ``dmux stop``, ``dmux start`` on one new container, as typed.

    The container is addressed by the name ``dmux init`` prints (dmux names containers
    after it); the checks find its panes as the ones that appeared, not by dmux's tags.
    """
    before = b.server.panes() if check else set()
    printed = b.call("init", mode, "init", "-i", IMAGE).split()

    if not printed:
        raise BenchError("`dmux init` succeeded but printed no container name")

    made = Made(printed[-1])
    opened = expect(b, made.id, "running", before, after="dmux init") if check else set()
    b.call("stop", mode, "stop", made.id)

    if check:
        gone = opened & b.server.panes()
        expect(b, made.id, "paused", b.server.panes(), after="dmux stop")

        if gone:
            raise BenchError(f"after `dmux stop`: pane {' '.join(gone)} is still open")

        before = b.server.panes()

    b.call("start", mode, "start", made.id)

    if check:
        expect(b, made.id, "running", before, after="dmux start")

    return made


def expect(b: Bench, container: str, status: str, before: set[str], *, after: str) -> set[str]:
    """Check, untimed, the container's status and the panes opened since ``before``.

    ``init`` and ``start`` must open exactly one pane; ``stop`` none.
    """
    actual = run(["docker", "inspect", "-f", "{{.State.Status}}", container]).strip()
    opened = b.server.panes() - before
    wanted = 0 if status == "paused" else 1

    if actual != status or len(opened) != wanted:
        raise BenchError(
            f"after `{after}`: container {container} is {actual!r} (expected {status!r}); "
            f"panes opened: {sorted(opened) or 'none'} (expected {wanted})"
        )

    return opened


def clean_round(b: Bench, made: list[Made]) -> None:
    """Remove the round's containers, then every pane but the first (untimed)."""
    ids = [m.id for m in made]

    if ids:
        run(["docker", "rm", "-f", *ids])

    for pane in b.server.panes() - {b.server.pane}:
        with contextlib.suppress(BenchError):
            b.server.tmux("kill-pane", "-t", pane)


def one_round(b: Bench, mode: str, with_hand: bool, check: bool) -> None:
    made: list[Made] = []

    try:
        made.append(dmux_cycle(b, mode, check))

        if with_hand:
            hand = hand_init(b)
            made.append(hand)
            b.hand("stop", ["docker", "pause", hand.id],
                   ["tmux", "-L", b.server.name, "kill-pane", "-t", hand.panes[-1]])
            hand_start(b, hand)
    finally:
        clean_round(b, made)


def cycle_phase(b: Bench, mode: str, rounds: int, with_hand: bool) -> None:
    with b.results.paused():
        one_round(b, mode, with_hand, check=True)

    for i in range(rounds):
        one_round(b, mode, with_hand, check=i == rounds - 1)


# --------------------------------------------------------------------------- phase 3


def make_containers(b: Bench, count: int) -> None:
    """Real dmux containers of the private server, made by hand in parallel.

    ``dmux.auto-pause=0`` keeps a watcher from pausing them (they have no pane), so that
    every mode lists the same states and no pausing runs during the timings.
    """
    names = [f"bench-{b.tag}-{i}" for i in range(count)]

    def make(name: str) -> None:
        run(["docker", "run", "-dit", "--name", name, "--label", f"dmux.name={name}",
             "--label", f"dmux.tmux={b.server.socket_path}", "--label", "dmux.auto-pause=0",
             IMAGE])

    with ThreadPoolExecutor(MAKERS) as pool:
        list(pool.map(make, names))


def ls_phase(b: Bench, mode: str, rounds: int, count: int, with_hand: bool) -> None:
    operation = f"ls ({count} containers)"
    hand_ls = (["docker", "ps", "-a", "--filter", f"label=dmux.tmux={b.server.socket_path}"],
               ["tmux", "-L", b.server.name, "list-panes", "-a"])

    with b.results.paused():
        listed = b.call(operation, mode, "ls", "-q").split()

        if len(listed) != count:
            raise BenchError(f"`dmux ls -q` ({mode}) listed {len(listed)} names, not {count}")

    for _ in range(rounds):
        b.call(operation, mode, "ls")

        if with_hand:
            b.hand(operation, *hand_ls)


# --------------------------------------------------------------------------- the watcher


def watcher_available(b: Bench) -> bool:
    done = subprocess.run([b.dmux, "watch", "--help"], capture_output=True, text=True,
                          env=b.dmux_env(INPROC), timeout=CALL_TIMEOUT, check=False)
    return done.returncode == 0


def start_watcher(b: Bench) -> None:
    """``dmux -L NAME watch`` in the background, until its socket answers a real command."""
    from dmux_async.client import hand_over, watcher_socket

    env = b.dmux_env(WATCHER)
    socket_path = watcher_socket(env, b.server.name, None)

    with open(b.watcher_log, "ab") as log:
        b.watcher = subprocess.Popen([b.dmux, "-L", b.server.name, "watch"], env=env,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    deadline = time.monotonic() + WATCHER_READY_TIMEOUT

    while time.monotonic() < deadline:
        if b.watcher.poll() is not None:
            raise BenchError(f"`dmux watch` exited {b.watcher.returncode} before answering; "
                             f"log {b.watcher_log}:\n{tail(b.watcher_log)}")

        reply = hand_over(["-L", b.server.name, "ls", "-q"], env, os.getcwd())

        if reply is not None and reply.get("code") == 0:
            progress(f"watcher: pid {b.watcher.pid}, socket {socket_path}")
            return

        time.sleep(0.05)

    raise BenchError(f"`dmux watch` did not answer at {socket_path} within "
                     f"{WATCHER_READY_TIMEOUT:g} s; log {b.watcher_log}:\n{tail(b.watcher_log)}")


def stop_watcher(b: Bench) -> None:
    """SIGTERM the watcher this script started, by pid, and wait for it."""
    watcher, b.watcher = b.watcher, None

    if watcher is None or watcher.poll() is not None:
        if watcher is not None and watcher.returncode != 0:
            progress(f"watcher had exited {watcher.returncode}; log:\n{tail(b.watcher_log)}")
        return

    code = stop_process(watcher, "watcher", WATCHER_STOP_TIMEOUT)

    if code not in (0, -signal.SIGTERM):
        progress(f"watcher exited {code} on SIGTERM; log:\n{tail(b.watcher_log)}")


def handled_in_watcher(log: Path) -> dict[str, Samples]:
    """Per command, the time the watcher says it spent (its ``request_handled`` log lines)."""
    found: dict[str, Samples] = {}

    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
                entry = json.loads(line)

                if entry.get("event") == "request_handled":
                    command = [w for w in entry["command"] if not w.startswith("-")][1]
                    found.setdefault(command, Samples()).values.append(entry["ms"] / 1000)

    return found


# --------------------------------------------------------------------------- clean-up


def clean_up(b: Bench) -> None:
    """Stop the watcher, remove every container made, kill the private tmux server."""
    steps: list[Callable[[], object]] = [
        lambda: stop_watcher(b),
        lambda: remove_labelled(f"dmux.tmux={b.server.socket_path}"),
        lambda: remove_labelled(f"{HAND_LABEL}={b.tag}"),
        lambda: b.extra and run(["docker", "rm", "-f", *b.extra]),
        lambda: b.server.tmux("kill-server"),
    ]

    for step in steps:
        try:
            step()
        except (BenchError, OSError, subprocess.SubprocessError) as exc:
            if "No such container" not in str(exc):
                progress(f"clean-up: {exc}")

    Path(b.server.socket_path).unlink(missing_ok=True)  # tmux 3.3 leaves it behind
    remove_runtime_files(b.env, b.server.name, b.server.socket_path)


# --------------------------------------------------------------------------- report


def floors(b: Bench, python: str, shimmed: bool, rounds: int) -> list[tuple[str, Samples]]:
    """Interpreter start-up alone, the least any dmux call can cost."""
    probes = [(f"{python} -c pass", [python, "-c", "pass"]),
              ("import dmux_async.client (watcher path)",
               [python, "-c", "import dmux_async.client"])]
    shim_python = Path(b.dmux).with_name("python3")

    if shimmed and shim_python.exists():
        probes.insert(1, (f"{shim_python} -c pass (PATH shim)", [str(shim_python), "-c", "pass"]))

    measured = []

    for label, argv in probes:
        samples = Samples()
        timed(argv, b.env)  # warm-up

        for _ in range(rounds):
            samples.values.append(timed(argv, b.env)[0])

        measured.append((label, samples))

    return measured


TARGETS: dict[str, tuple[str, Callable[[Samples, Samples], bool]]] = {
    "init": ("<= 1.2x hand", lambda d, h: d.median() <= 1.2 * h.median()),
    "stop": ("< 150 ms", lambda d, h: d.median() < 0.150),
    "start": ("< 150 ms", lambda d, h: d.median() < 0.150),
    "ls": ("< 200 ms", lambda d, h: d.median() < 0.200),
}


def ratio(dmux: Samples, hand: Samples) -> str:
    if not dmux.values or not hand.values:
        return "-"

    return f"{dmux.median() / hand.median():.2f}x"


def verdict(operation: str, results: Results) -> str:
    target, met = TARGETS[operation.split(maxsplit=1)[0]]
    hand = results.get(operation, HAND)
    marks = []

    for mode, short in ((INPROC, "in-proc"), (WATCHER, "watcher")):
        samples = results.get(operation, mode)

        if samples.values and hand.values:
            marks.append(f"{short} {'ok' if met(samples, hand) else 'MISSED'}")

    return f"{target}: {', '.join(marks)}"


def print_table(results: Results, floor_rows: list[tuple[str, Samples]]) -> None:
    header = ("operation", "dmux (in-process)", "dmux (watcher)", "hand-typed",
              "ratio dmux/hand (in-proc, watcher)", "target (median)")
    rows = [header]

    for operation in results.table:
        inproc, watcher, hand = (results.get(operation, m) for m in (INPROC, WATCHER, HAND))
        rows.append((operation, inproc.cell(), watcher.cell(), hand.cell(),
                     f"{ratio(inproc, hand)}, {ratio(watcher, hand)}",
                     verdict(operation, results)))

    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(line(header))
    print("-+-".join("-" * w for w in widths))

    for row in rows[1:]:
        print(line(row))

    print("\nmedian / p90; floor (interpreter start-up, no dmux work):")

    for label, samples in floor_rows:
        print(f"  {label}: {samples.cell()}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per operation")
    parser.add_argument("--containers", type=int, default=100,
                        help="dmux containers alive while timing ls")
    args = parser.parse_args(argv)

    if args.rounds < 1 or args.containers < 0:
        parser.error("--rounds must be >= 1 and --containers >= 0")

    return args


def run_phases(b: Bench, args: argparse.Namespace, python: str, shimmed: bool) -> None:
    progress("floor: interpreter start-up")
    floor_rows = floors(b, python, shimmed, args.rounds)
    has_watcher = watcher_available(b)

    progress(f"phase 1: init/stop/start in-process and by hand, {args.rounds} rounds")
    cycle_phase(b, INPROC, args.rounds, with_hand=True)

    if has_watcher:
        progress("phase 2: init/stop/start through the watcher")
        start_watcher(b)
        cycle_phase(b, WATCHER, args.rounds, with_hand=False)
        stop_watcher(b)

    progress(f"phase 3: ls with {args.containers} containers")
    make_containers(b, args.containers)
    ls_phase(b, INPROC, args.rounds, args.containers, with_hand=True)

    if has_watcher:
        start_watcher(b)
        ls_phase(b, WATCHER, args.rounds, args.containers, with_hand=False)

    print(f"\nload average at the end of the timings: {load()}\n")
    print_table(b.results, floor_rows)

    if not has_watcher:
        print("\nwatcher: not available (`dmux watch --help` failed)")
        return

    handled = handled_in_watcher(b.watcher_log)

    if handled:
        print("\ninside the watcher (its log's request_handled ms, warm-up calls included):")

        for command, samples in handled.items():
            print(f"  {command}: {samples.cell()} (n={len(samples.values)})")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    dmux = shutil.which("dmux")

    if dmux is None:
        progress("bench: no `dmux` on PATH (pip install -e .)")
        return 2

    python, shimmed = interpreter_of(dmux)
    signal.signal(signal.SIGTERM, on_sigterm)
    began = time.perf_counter()
    image = ensure_image()
    name = f"dmux-bench-{uuid.uuid4().hex[:10]}"
    server = start_server(name)
    env = clean_env() | {"TMUX": f"{server.socket_path},{server.pid},0", "TMUX_PANE": server.pane}
    log_fd, log_path = tempfile.mkstemp(prefix=f"{name}-watch-", suffix=".log")
    os.close(log_fd)
    b = Bench(server, dmux, env, Results(), name.removeprefix("dmux-bench-"), Path(log_path))
    print(f"dmux {dmux} (python {python}{', via a shim' if shimmed else ''}); image {image}; "
          f"tmux -L {name} ({server.socket_path}, pane {server.pane}); "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs; load {load()}")

    try:
        run_phases(b, args, python, shimmed)
    except BenchError as exc:
        print(f"\nbench stopped: {exc}")

        if b.results.table:
            print("\npartial results:")
            print_table(b.results, [])

        return 1
    finally:
        clean_up(b)
        progress(f"done in {time.perf_counter() - began:.0f} s (load {load()}); "
                 f"watcher log: {log_path}")

    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
