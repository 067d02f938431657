"""The tmux side: listing, opening, focusing and closing the panes dmux shows containers in.

libtmux runs each tmux command; this module names the few dmux needs. Its calls block, so
they run in a worker thread with a time limit: a tmux server that does not answer is an
error, never an empty answer.
"""

import contextlib
from dataclasses import dataclass
from enum import StrEnum

import anyio
import libtmux
from libtmux import exc as tmux_exc

from dmux_async.errors import TmuxError, TmuxServerGone, TmuxUnreachable, UserError
from dmux_async.model import PANE_CONTAINER, PANE_NAME, Pane

TMUX_TIMEOUT = 5.0
_FIELDS = ("pane_id", PANE_CONTAINER, "session_name", "window_index", "pane_dead")
_LIST_FORMAT = "\t".join(f"#{{{f}}}" for f in _FIELDS)
_DEAD_SERVER = ("no server running", "error connecting to", "server exited")


class Split(StrEnum):
    """Where a new pane goes, relative to the pane dmux was run from."""

    RIGHT = "right"
    BELOW = "below"
    WINDOW = "window"


@dataclass(frozen=True)
class Layout:
    """Every pane of the server at one moment, and the tagged ones among them."""

    sessions: dict[str, str]
    tagged: list[Pane]


class Tmux:
    """One tmux server, addressed by its socket path."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._server = libtmux.Server(socket_path=socket_path)

    def run(self, *args: str) -> list[str]:
        """Run one tmux command (or a ``;``-separated list) and return its output lines."""
        try:
            result = self._server.cmd(*args)
        except tmux_exc.TmuxCommandNotFound as exc:
            raise TmuxUnreachable("tmux is not installed (no `tmux` on PATH)") from exc

        if result.returncode != 0:
            raise self._error(args, " ".join(result.stderr).strip())

        return list(result.stdout)

    async def arun(self, *args: str, timeout: float = TMUX_TIMEOUT) -> list[str]:  # noqa: ASYNC109
        """:meth:`run` off the event loop; a tmux that does not answer in time is an error."""
        try:
            with anyio.fail_after(timeout):
                return await anyio.to_thread.run_sync(
                    lambda: self.run(*args), abandon_on_cancel=True
                )
        except TimeoutError as exc:
            raise TmuxUnreachable(
                f"tmux server {self.socket_path} did not answer within {timeout:g} s"
            ) from exc

    async def layout(self) -> Layout:
        """Every pane's session, and the panes dmux tagged with a container."""
        sessions: dict[str, str] = {}
        tagged: list[Pane] = []

        for line in await self.arun("list-panes", "-a", "-F", _LIST_FORMAT):
            pane_id, container, session, window, dead = (line.split("\t") + [""] * 5)[:5]
            sessions[pane_id] = session

            if container:
                tagged.append(Pane(pane_id, container, session, window, dead == "1"))

        return Layout(sessions, tagged)

    async def describe(self, target: str) -> str:
        """``pane_id<TAB>session`` of a target; fails if the target does not exist."""
        lines = await self.arun(
            "display-message", "-p", "-t", target, "#{pane_id}\t#{session_name}"
        )
        return lines[0] if lines else ""

    async def open(
        self, anchor: str, split: Split, argv: list[str], container_id: str, name: str
    ) -> str:
        """Open a pane running ``argv``, tagged with the container it shows; returns its id.

        The pane is tagged in the same tmux command list that creates it: tmux runs the
        list as one, so nobody can see the pane untagged. Given two or more words, tmux
        executes the program directly, with no shell that could interpret a value.
        """
        if len(argv) < 2:
            raise ValueError("a pane's program needs at least two words to bypass the shell")

        if split is Split.WINDOW:
            window = await self.arun("display-message", "-p", "-t", anchor, "#{window_id}")
            where = ["new-window", "-a", "-t", window[0]]
        else:
            where = ["split-window", "-h" if split is Split.RIGHT else "-v", "-t", anchor]

        # The new pane is the current one for the rest of the list.
        lines = await self.arun(
            *where, "-P", "-F", "#{pane_id}", *(_literal(word) for word in argv), ";",
            "set-option", "-p", PANE_CONTAINER, container_id, ";",
            "set-option", "-p", PANE_NAME, name, ";",
            "select-pane", "-T", name,
        )
        return lines[0]

    async def capture_and_close(self, pane_id: str, container_id: str) -> str | None:
        """The screen of a pane, then the pane killed if it still shows this container."""
        try:
            lines = await self.arun(
                "capture-pane", "-p", "-e", "-t", pane_id, ";", *_close_if(pane_id, container_id)
            )
        except UserError:
            return None  # the pane is already gone

        return "\n".join(lines) + "\n"

    async def close(self, pane_id: str, container_id: str) -> None:
        """Kill a pane if it still shows this container (pane ids are reused)."""
        with contextlib.suppress(UserError):  # the pane is already gone
            await self.arun(*_close_if(pane_id, container_id))

    async def notify(self, pane_id: str, message: str) -> None:
        """Show a one-line message in the status line of the clients that see a pane."""
        with contextlib.suppress(UserError):
            escaped = message.replace("#", "##")  # tmux expands formats in messages
            await self.arun("display-message", "-t", pane_id, "-d", "4000", "--", escaped)

    async def focus(self, pane_id: str) -> None:
        await self.arun("select-window", "-t", pane_id, ";", "select-pane", "-t", pane_id)

    def _error(self, args: tuple[str, ...], stderr: str) -> Exception:
        if any(marker in stderr for marker in _DEAD_SERVER):
            return TmuxServerGone(
                f"no tmux server is running at {self.socket_path}: start tmux, "
                "or point dmux at a running server with -L NAME or -S PATH"
            )

        if stderr.startswith(("can't find", "no such")):
            return UserError(f"tmux: {stderr}")

        return TmuxError(f"tmux {args[0]} failed: {stderr}")


def _close_if(pane_id: str, container_id: str) -> list[str]:
    """A tmux command that kills a pane only if it still shows the container."""
    shows = f"#{{==:#{{{PANE_CONTAINER}}},{container_id}}}"
    return ["if-shell", "-F", "-t", pane_id, shows, f"kill-pane -t {pane_id}"]


def _literal(word: str) -> str:
    """Keep a word whole: tmux reads a trailing ``;`` as the end of a command."""
    return word[:-1] + "\\;" if word.endswith(";") else word
