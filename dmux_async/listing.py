"""``dmux ls`` output: a table for people, JSON lines of a stable schema for scripts.

The JSON form is a list of objects with these keys, kept stable across versions:
``name``, ``id`` (full container id), ``image``, ``state`` (attached, detached, paused,
exited or created), ``pane`` (tmux pane id or null), ``session`` (or null), ``created``
(Unix time, seconds) and ``auto_pause`` (boolean).
"""

import json
import time

from dmux_async.commands import Row

_COLUMNS = ("NAME", "IMAGE", "STATE", "PANE", "SESSION", "AGE")


def as_json(rows: list[Row]) -> str:
    return json.dumps([_record(row) for row in rows], indent=2)


def as_names(rows: list[Row]) -> str:
    return "\n".join(row.container.name for row in rows)


def as_table(rows: list[Row], now: float | None = None) -> str:
    """Columns padded to their widest cell, like ``docker ps``."""
    now = time.time() if now is None else now
    cells = [_COLUMNS, *(_cells(row, now) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells)
    return "\n".join(line.rstrip() for line in lines)


def age(seconds: float) -> str:
    """A short, human age: 42s, 5m, 3h, 2d."""
    seconds = max(0, int(seconds))

    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"

    return f"{seconds}s"


def _record(row: Row) -> dict[str, object]:
    return {
        "name": row.container.name,
        "id": row.container.id,
        "image": row.container.image,
        "state": row.state.value,
        "pane": row.pane.pane_id if row.pane else None,
        "session": row.pane.session if row.pane else None,
        "created": row.container.created,
        "auto_pause": row.container.auto_pause,
    }


def _cells(row: Row, now: float) -> tuple[str, ...]:
    pane = row.pane
    return (
        row.container.name,
        row.container.image,
        row.state.value,
        pane.pane_id if pane else "-",
        pane.session if pane else "-",
        age(now - row.container.created),
    )
