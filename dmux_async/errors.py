"""The errors dmux reports to its user, and the exit code of each kind."""

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the ``dmux`` command, documented in ``--help`` and the README."""

    OK = 0
    USER_ERROR = 1
    UNREACHABLE = 2
    INTERNAL = 3


class DmuxError(Exception):
    """Root of every error dmux turns into a one-line message."""

    exit_code = ExitCode.USER_ERROR


class UserError(DmuxError):
    """Bad input: an unknown name, an ambiguous prefix, a name already taken."""


class NameTaken(UserError):
    """Another container, dmux's or not, has that name."""


class ContainerGone(UserError):
    """The container was removed, possibly behind dmux's back."""


class EngineUnreachable(DmuxError):
    """The Docker engine did not answer, or refused us."""

    exit_code = ExitCode.UNREACHABLE


class TmuxUnreachable(DmuxError):
    """The tmux server is not running or does not answer."""

    exit_code = ExitCode.UNREACHABLE


class TmuxServerGone(TmuxUnreachable):
    """No tmux server listens on the socket: it was never started, exited or was killed.

    Unlike a timeout, this is an answer: that server has no panes at all.
    """


class EngineError(DmuxError):
    """The engine answered a request with an error we cannot blame on the user."""

    exit_code = ExitCode.INTERNAL


class TmuxError(DmuxError):
    """tmux rejected a command."""

    exit_code = ExitCode.INTERNAL


class HandBack(Exception):
    """A watcher was asked for work that belongs in the caller's process: run it there.

    Pulling an image is such work: its progress belongs on the caller's terminal, and it
    would hold up every other command the watcher answers. Not a :class:`DmuxError`,
    since nothing failed; :func:`dmux_async.cli.run_cli` lets it through.
    """
