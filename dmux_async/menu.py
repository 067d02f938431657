"""``dmux menu``: a tmux menu with one item per container that ``dmux start`` can show.

Each item runs ``dmux start NAME -t PANE`` through tmux's ``run-shell``. tmux reads an
item's command twice: it expands formats when the menu is made, and ``run-shell``
expands them again before ``sh`` runs it. So every word is quoted for ``sh``, each ``#``
is doubled twice, and the whole goes into a tmux double-quoted string.
"""

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dmux_async.errors import TmuxError, UserError
from dmux_async.executable import dmux_executable
from dmux_async.panes import Tmux
from dmux_async.place import Place
from dmux_async.roster import Entry

TITLE = "#[align=centre] dmux start "
KEYS = "123456789"
_NOT_SHOWN = frozenset({"detached", "paused", "exited", "created"})


@dataclass(frozen=True)
class Runner:
    """How an item runs a dmux command line.

    With ``program`` unset, ``dmux -S SOCKET ARGS...`` in the foreground: tmux shows an
    error in the pane's view mode. With a ``program`` (contrib's ``scripts/run``),
    ``PROGRAM SOCKET CLIENT ARGS...`` in the background: it shows errors in the status line.
    """

    socket_path: str
    client: str | None = None
    program: str | None = None
    dmux: str = "dmux"

    def command(self, args: Sequence[str]) -> str:
        """The tmux command an item runs for ``dmux ARGS...``."""
        if self.program:
            words = [self.program, self.socket_path, self.client or "", *args]
            return f"run-shell -b {_tmux_quoted(_sh(words))}"

        words = [self.dmux, "-S", self.socket_path, *args]
        return f"run-shell {_tmux_quoted(_sh(words) + ' 2>&1 >/dev/null')}"


def show(
    place: Place, environ: Mapping[str, str], entries: Sequence[Entry], client: str | None,
    program: str | None,
) -> None:
    """Show the menu on a client, beside the pane dmux acts from; returns when it closes."""
    if place.anchor is None:
        raise UserError("which pane should the containers open beside? run dmux menu from "
                        "a tmux pane, or pass -t PANE (a key binding passes '#{pane_id}')")

    dmux = "dmux" if program else dmux_executable(environ)
    runner = Runner(place.socket_path, client, program, dmux)

    try:
        Tmux(place.socket_path).run(*display_menu(entries, runner, place.anchor))
    except TmuxError as exc:
        raise UserError(f"{exc}: pass -c CLIENT (a key binding passes '#{{client_name}}')") from exc


def startable(entries: Sequence[Entry]) -> list[Entry]:
    """The containers with no pane."""
    return [e for e in entries if e.state in _NOT_SHOWN]


def display_menu(entries: Sequence[Entry], runner: Runner, pane: str) -> list[str]:
    """The ``tmux display-menu`` arguments: one item per container, then 'all' for several."""
    chosen = startable(entries)

    if not chosen:
        raise UserError("nothing to start: every dmux container of this tmux server is shown")

    argv = ["display-menu", "-T", TITLE, "-t", pane]
    argv += ["-c", runner.client] if runner.client else []

    for index, entry in enumerate(chosen):
        key = KEYS[index] if index < len(KEYS) else ""
        label = f"{entry.name} ({entry.state})".replace("#", "##")
        argv += [label, key, runner.command(["start", entry.name, "-t", pane])]

    if len(chosen) > 1:
        argv += ["", "all of them", "a", runner.command(["start", "--all", "-t", pane])]

    return argv


def _sh(words: Sequence[str]) -> str:
    """``words`` as one ``sh`` command line, safe from both format expansions."""
    return " ".join(shlex.quote(w) for w in words).replace("#", "####")


def _tmux_quoted(text: str) -> str:
    """``text`` as a tmux double-quoted string: no variable expansion, no escapes."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'
