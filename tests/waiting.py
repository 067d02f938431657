"""Polling with a deadline, for tests that wait on a real engine or tmux server.

Imported as a top-level module, like `images` (tests/ is on sys.path).
"""

import time
from collections.abc import Callable


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Return once ``check()`` holds; fail, naming ``what``, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout

    while time.monotonic() < deadline:
        if check():
            return

        time.sleep(0.05)

    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
