"""The ``dmux`` command line: thin typer commands that parse, call one function, report.

Exit codes: 0 success; 1 a user error (unknown name, bad input, not inside tmux);
2 the Docker engine or the tmux server cannot be reached; 3 anything else (a bug, or an
engine or tmux failure dmux cannot explain).
"""

import functools
import os
import sys
from collections.abc import Mapping

import typer

from dmux_async.cli import containers, tools
from dmux_async.cli.base import Invocation, app, fail
from dmux_async.errors import DmuxError, ExitCode, HandBack

__all__ = ["Invocation", "app", "containers", "main", "run_cli", "tools"]


def run_cli(
    argv: list[str],
    environ: Mapping[str, str],
    cwd: str,
    *,
    interactive: bool = False,
    handed_over: bool = False,
) -> int:
    """Run one dmux command line; returns its exit code.

    Raises only :class:`HandBack`, and only when ``handed_over`` (a watcher runs it for a
    client): the client must then run the command itself.
    """
    command = _click_command()

    try:
        # Without standalone mode, a typer.Exit raised by a command comes back as its code.
        code = command.main(argv, prog_name="dmux", standalone_mode=False,
                            obj=Invocation(environ, cwd, interactive, handed_over=handed_over))
    except HandBack:
        raise
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # a usage error: unknown option, missing argument
        fail(f"{exc.format_message()} (see `dmux --help`)")
        return ExitCode.USER_ERROR
    except (typer.Abort, KeyboardInterrupt):
        fail("interrupted")
        return 130
    except DmuxError as exc:
        fail(str(exc))
        return exc.exit_code
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if environ.get("DMUX_DEBUG"):
            raise

        fail(f"unexpected {type(exc).__name__}: {exc} (set DMUX_DEBUG=1 for a traceback)")
        return ExitCode.INTERNAL

    return code if isinstance(code, int) else ExitCode.OK


@functools.cache
def _click_command() -> "typer.core.TyperGroup":
    """Built once: a watcher runs many command lines through the same objects."""
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    return command


def main() -> int:
    """Entry point when no watcher takes the command: run it in this process."""
    from dmux_async.logs import configure

    configure(os.environ)
    return run_cli(sys.argv[1:], os.environ, os.getcwd(), interactive=sys.stdin.isatty())
