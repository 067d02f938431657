"""How a pull shows its progress: one line redrawn on a terminal, nothing anywhere else.

The engine reports a pull as messages per layer (``Downloading`` with bytes so far and in
all, ``Pull complete``, ``Already exists``); the line sums them into one bar.
"""

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

REDRAW_EVERY = 0.1
BAR_WIDTH = 24
_DOWNLOADED = frozenset({"Verifying Checksum", "Download complete", "Extracting"})
_DONE = frozenset({"Pull complete", "Already exists"})
_CLEAR = "\r\x1b[K"


class PullProgress(Protocol):
    """Told each progress message of one pull, then whether the pull succeeded."""

    def update(self, message: Mapping[str, Any]) -> None: ...

    def finish(self, ok: bool) -> None: ...


class Quiet:
    """No terminal to draw on: show nothing, so that logs and pipes stay clean."""

    def update(self, message: Mapping[str, Any]) -> None:
        pass

    def finish(self, ok: bool) -> None:
        pass


@dataclass
class _Layer:
    current: int = 0
    total: int = 0
    done: bool = False


class ProgressLine:
    """``dmux: pulling IMAGE [=====     ] 12.3/45.6 MB, 2/5 layers``, redrawn in place."""

    def __init__(
        self, image: str, stream: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._image = image
        self._stream = stream
        self._clock = clock
        self._layers: dict[str, _Layer] = {}
        self._status = "waiting"
        self._drawn_at: float | None = None

    def update(self, message: Mapping[str, Any]) -> None:
        self._record(message)
        now = self._clock()

        if self._drawn_at is None or now - self._drawn_at >= REDRAW_EVERY:
            self._drawn_at = now
            self._draw(self.line())

    def finish(self, ok: bool) -> None:
        """Clear the line; leave a short note only when the pull succeeded."""
        self._stream.write(_CLEAR + (f"dmux: pulled {self._image}\n" if ok else ""))
        self._stream.flush()

    def line(self) -> str:
        """The line as it stands, before it is cut to the terminal's width."""
        layers = self._layers.values()
        total = sum(layer.total for layer in layers)

        if not total:
            return f"dmux: pulling {self._image}: {self._status}"

        current = sum(min(layer.current, layer.total) for layer in layers)
        filled = BAR_WIDTH * current // total
        bar = "=" * filled + " " * (BAR_WIDTH - filled)
        done = sum(1 for layer in layers if layer.done)
        return (f"dmux: pulling {self._image} [{bar}] {current / 1e6:.1f}/{total / 1e6:.1f} MB, "
                f"{done}/{len(self._layers)} layers")

    def _record(self, message: Mapping[str, Any]) -> None:
        status = str(message.get("status", ""))
        layer_id = message.get("id")
        detail = message.get("progressDetail") or {}

        if status:
            self._status = status

        if not isinstance(layer_id, str) or status.startswith("Pulling from"):
            return

        layer = self._layers.setdefault(layer_id, _Layer())

        if status == "Downloading" and isinstance(detail, Mapping):
            layer.current = int(detail.get("current") or 0)
            layer.total = int(detail.get("total") or layer.total)
        elif status in _DOWNLOADED:
            layer.current = layer.total
        elif status in _DONE:
            layer.current, layer.done = layer.total, True

    def _draw(self, line: str) -> None:
        self._stream.write(_CLEAR + line[: _columns(self._stream) - 1])
        self._stream.flush()


def for_stream(image: str, stream: TextIO) -> PullProgress:
    """A progress line on a terminal, else nothing."""
    return ProgressLine(image, stream) if stream.isatty() else Quiet()


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError):
        return 80
