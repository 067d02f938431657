"""What every ``dmux`` command shares: the typer app, how dmux was called, and the helpers
that turn a command's result or error into output.

Exit codes: 0 success; 1 a user error (unknown name, bad input, not inside tmux);
2 the Docker engine or the tmux server cannot be reached; 3 anything else (a bug, or an
engine or tmux failure dmux cannot explain).
"""

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from dmux_async import completion
from dmux_async.errors import DmuxError

if TYPE_CHECKING:
    from dmux_async import commands, roster

T = TypeVar("T")

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 user error (unknown name, bad input, not inside tmux); "
    "2 Docker engine or tmux server unreachable; 3 unexpected failure."
)

app = typer.Typer(
    name="dmux",
    help="Docker + tmux: throw-away containers in tmux panes, frozen with docker pause.",
    epilog=EXIT_CODES_HELP,
    invoke_without_command=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class LogFormat(StrEnum):
    AUTO = "auto"
    CONSOLE = "console"
    JSON = "json"


@dataclass(frozen=True)
class Invocation:
    """How dmux was called: the caller's environment and folder, and the global options."""

    environ: Mapping[str, str]
    cwd: str
    interactive: bool = False
    socket_name: str | None = None
    socket_path: str | None = None
    handed_over: bool = False  # run by a watcher for a client, not in the caller's process


SocketName = Annotated[str | None, typer.Option("-L", "--socket-name", help="tmux -L NAME")]
SocketPath = Annotated[str | None, typer.Option("-S", "--socket-path", help="tmux -S PATH")]
Target = Annotated[
    str | None,
    typer.Option("-t", "--target", help="tmux target pane or SESSION:WINDOW to act from"),
]
Name = Annotated[str | None, typer.Argument(
    help="container name or id prefix", autocompletion=completion.any_name)]
RunningName = Annotated[str | None, typer.Argument(
    help="container name or id prefix", autocompletion=completion.running_name)]
AsJson = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


@app.callback()
def main_options(
    ctx: typer.Context, socket_name: SocketName = None, socket_path: SocketPath = None
) -> None:
    """Docker + tmux: throw-away containers in tmux panes, frozen with docker pause."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())

    base: Invocation = ctx.obj
    ctx.obj = replace(base, socket_name=socket_name, socket_path=socket_path)


def run_action(
    ctx: typer.Context, target: str | None, action: "Callable[[commands.Context], Awaitable[T]]"
) -> T:
    """Connect to the engine and tmux, run ``action``, and unwrap task-group errors."""
    import anyio

    from dmux_async import commands
    from dmux_async.place import find_place

    call: Invocation = ctx.obj
    place = find_place(call.environ, call.socket_name, call.socket_path, target)

    async def session() -> T:
        async with commands.open_context(place, call.environ) as context:
            return await action(context)

    try:
        return anyio.run(session)
    except BaseExceptionGroup as group:
        raise first_dmux_error(group) from group


def roster_of(ctx: typer.Context) -> "list[roster.Entry]":
    """The server's containers: from the watcher if one answers, else read here."""
    from dmux_async import commands, roster

    call: Invocation = ctx.obj
    listed = roster.from_watcher(call.environ, call.cwd, call.socket_name, call.socket_path)
    return listed if listed is not None else roster.from_rows(run_action(ctx, None, commands.rows))


def first_dmux_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return first_dmux_error(exc)

        if isinstance(exc, DmuxError):
            return exc

    return group.exceptions[0]


def report(outcome: "commands.Outcome", as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(asdict(outcome)))
        return

    typer.echo(outcome.name)

    if outcome.action == "already-paused":
        typer.echo(f"dmux: {outcome.name} was already paused", err=True)


def choice(kind: type[T], value: str, option: str) -> T:
    try:
        return kind(value)  # type: ignore[call-arg]
    except ValueError:
        choices = ", ".join(str(v) for v in kind)  # type: ignore[attr-defined]
        raise typer.BadParameter(f"{option} must be one of {choices}, not {value!r}") from None


def absolute_volume(spec: str, call: Invocation) -> str:
    """A host path in ``-v`` or the settings, from the caller's folder and home.

    ``./x`` and ``../x`` are relative to the caller's folder, as in the docker CLI; ``~``
    is the caller's home, since no shell expands it in the settings file.
    """
    host, sep, rest = spec.partition(":")

    if sep and (host == "~" or host.startswith("~/")) and call.environ.get("HOME"):
        return f"{call.environ['HOME']}{host[1:]}:{rest}"

    if sep and host.startswith("."):
        return f"{os.path.normpath(os.path.join(call.cwd, host))}:{rest}"

    return spec


def words_after(command: list[str] | None) -> list[str]:
    """A command given after its NAME: a ``--`` that reaches us is only a separator."""
    words = list(command or [])
    return words[1:] if words[:1] == ["--"] else words


def fail(message: str) -> None:
    typer.echo(f"dmux: {message}", err=True)
