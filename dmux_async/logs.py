"""Logging, configured once by the entry point: readable on a terminal, JSON lines otherwise.

Events have stable lowercase past-tense names (``container_paused``) and fixed keys:
``container``, ``pane``, ``session``, ``reason``.
"""

import logging
import sys
from collections.abc import Mapping
from typing import TextIO

import structlog


def configure(
    environ: Mapping[str, str], fmt: str = "auto", level: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Set up structlog; ``fmt`` is ``console``, ``json`` or ``auto`` (console on a tty)."""
    stream = stream or sys.stderr
    chosen = level or environ.get("DMUX_LOG_LEVEL", "warning")
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    # The console renderer draws tracebacks itself; JSON needs them made into text first.
    rendering: list[structlog.typing.Processor] = (
        [structlog.dev.ConsoleRenderer(colors=stream.isatty())] if use_console
        else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    )

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *rendering,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(chosen.upper(), logging.WARNING)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
