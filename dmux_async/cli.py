"""The ``dmux`` command line: thin typer commands that parse, call one function, report.

Exit codes: 0 success; 1 a user error (unknown name, bad input, not inside tmux);
2 the Docker engine or the tmux server cannot be reached; 3 anything else (a bug, or an
engine or tmux failure dmux cannot explain).
"""

import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from dmux_async import completion
from dmux_async.errors import DmuxError, ExitCode, HandBack
from dmux_async.status_line import DEFAULT_FORMAT as STATUS_FORMAT

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


@app.command(context_settings={"allow_interspersed_args": False})
def init(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(help="instead of the image's CMD")] = None,
    image: Annotated[
        str | None, typer.Option("-i", "--image", help="image to run [default: see dmux config]")
    ] = None,
    name: Annotated[str | None, typer.Option("-n", "--name", help="container name")] = None,
    volume: Annotated[
        list[str] | None, typer.Option("-v", "--volume", help="bind mount, added to settings'")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("-e", "--env", help="KEY=VALUE, added to settings'")
    ] = None,
    workdir: Annotated[str | None, typer.Option("-w", "--workdir")] = None,
    here: Annotated[
        bool, typer.Option("--here", help="mount this folder at the same path and start in it")
    ] = False,
    as_user: Annotated[
        bool, typer.Option("--user", help="run as your own uid:gid, not root")
    ] = False,
    split: Annotated[
        str | None,
        typer.Option("--split", help="right, below or window [default: see dmux config]"),
    ] = None,
    auto_pause: Annotated[
        bool | None,
        typer.Option("--auto-pause/--no-auto-pause",
                     help="pause when its pane closes [default: see dmux config]"),
    ] = None,
    target: Target = None,
    as_json: AsJson = False,
) -> None:
    """Split the current window and run a fresh container attached in the new pane.

    Options not given come from DMUX_* variables, else the settings file; see `dmux config`.
    An image the engine lacks is pulled first, with a progress line on a terminal.
    """
    from dmux_async import commands, pull_progress, settings
    from dmux_async.panes import Split

    call: Invocation = ctx.obj
    flags = settings.flag_layer(image=image, command=_words(command) or None, volumes=volume,
                                env=env, workdir=workdir, split=split, auto_pause=auto_pause)
    chosen = settings.load(call.environ, flags)
    volumes = [_absolute_volume(v, call) for v in chosen.volumes]
    request = commands.InitRequest(
        image=chosen.image,
        name=name,
        command=list(chosen.command),
        env=list(chosen.env),
        volumes=[*volumes, f"{call.cwd}:{call.cwd}"] if here else volumes,
        workdir=call.cwd if here and workdir is None else chosen.workdir,
        user=f"{os.getuid()}:{os.getgid()}" if as_user else None,
        split=Split(chosen.split),
        auto_pause=chosen.auto_pause,
    )
    show_pull = None if call.handed_over else (
        lambda image: pull_progress.for_stream(image, sys.stderr))
    _report(_run(ctx, target, lambda c: commands.init(c, request, show_pull)), as_json)


@app.command()
def stop(ctx: typer.Context, name: RunningName = None, target: Target = None) -> None:
    """Freeze a container (docker pause) and close its pane."""
    from dmux_async import commands

    _report(_run(ctx, target, lambda c: commands.stop(c, name)), False)


@app.command()
def start(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        help="names or id prefixes", autocompletion=completion.startable_name)] = None,
    every: Annotated[bool, typer.Option("--all", help="every container not shown")] = False,
    session: Annotated[
        str | None, typer.Option("--session", help="tmux session to open the panes in")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="right, below or window, for each one")
    ] = None,
    target: Target = None,
    as_json: AsJson = False,
) -> None:
    """Resume containers into fresh panes (or focus the pane that shows one).

    Several containers go into a new window with a tiled layout unless --split is given.
    """
    from dmux_async import commands
    from dmux_async.panes import Split

    if every and names:
        raise typer.BadParameter("give NAMEs or --all, not both")

    request = commands.StartRequest(
        names=list(names or []),
        every=every,
        session=session,
        split=_choice(Split, split, "--split") if split else None,
    )
    outcomes = _run(ctx, target, lambda c: commands.start(c, request))

    if as_json:
        typer.echo(json.dumps([asdict(o) for o in outcomes]))
    else:
        typer.echo("\n".join(o.name for o in outcomes))


@app.command()
def delete(
    ctx: typer.Context,
    name: Name = None,
    force: Annotated[
        bool, typer.Option("-f", "--force", help="even if its filesystem changed")
    ] = False,
    target: Target = None,
) -> None:
    """Remove a container and close its pane (asks first if its filesystem changed)."""
    from dmux_async import commands

    call: Invocation = ctx.obj

    try:
        outcome = _run(ctx, target, lambda c: commands.delete(c, name, force))
    except commands.HasChanges as exc:
        if not call.interactive or not typer.confirm(f"{exc} -- delete it anyway?", err=True):
            raise

        confirmed = exc.name
        outcome = _run(ctx, target, lambda c: commands.delete(c, confirmed, force=True))

    _report(outcome, False)


@app.command("exec", context_settings={"allow_interspersed_args": False})
def exec_(
    ctx: typer.Context,
    name: Name = None,
    command: Annotated[list[str] | None, typer.Argument(help="default: sh")] = None,
    target: Target = None,
) -> None:
    """Open another shell (or COMMAND) in a running container, in a pane of its own."""
    from dmux_async import commands

    words = _words(command)
    _report(_run(ctx, target, lambda c: commands.exec_in(c, name, words)), False)


@app.command()
def save(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(
        metavar="[NAME] IMAGE[:TAG]", autocompletion=completion.any_name)],
    target: Target = None,
) -> None:
    """Commit a container as an image, so that what was tried can be kept."""
    from dmux_async import commands

    if len(args) > 2:
        raise typer.BadParameter("save takes at most two arguments: [NAME] IMAGE[:TAG]")

    name, image = (None, args[0]) if len(args) == 1 else (args[0], args[1])
    outcome = _run(ctx, target, lambda c: commands.save(c, name, image))
    typer.echo(outcome.detail)


@app.command("ls")
def list_containers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, schema in the README")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="names only")] = False,
) -> None:
    """List this tmux server's dmux containers and their state."""
    from dmux_async import commands, listing

    rows = _run(ctx, None, commands.rows)

    if as_json:
        typer.echo(listing.as_json(rows))
    elif quiet:
        typer.echo(listing.as_names(rows)) if rows else None
    else:
        typer.echo(listing.as_table(rows))


@app.command("config")
def show_config(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="print them as JSON")] = False,
) -> None:
    """Print the settings dmux init would use, each with where it came from."""
    from dmux_async import settings

    call: Invocation = ctx.obj
    chosen = settings.load(call.environ)
    typer.echo(settings.as_json(chosen) if as_json else settings.as_text(chosen))


@app.command()
def watch(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="reconcile once and exit")] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="auto, console or json")
    ] = "auto",
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Supervise this tmux server's containers: pause each one whose pane is gone."""
    import anyio

    from dmux_async.logs import configure
    from dmux_async.place import find_place
    from dmux_async.watch.supervisor import Watcher

    call: Invocation = ctx.obj
    configure(call.environ, _choice(LogFormat, log_format, "--log-format").value, log_level)
    watcher = Watcher(find_place(call.environ, call.socket_name, call.socket_path), call.environ)

    try:
        if once:
            anyio.run(watcher.once)
        else:
            anyio.run(watcher.run)
    except BaseExceptionGroup as group:
        raise _first_dmux_error(group) from group


@app.command()
def status(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option(
        "-f", "--format", help="with the fields {running} {paused} {exited} {total}",
    )] = STATUS_FORMAT,
) -> None:
    """One short line of container counts, for a tmux status line; `dmux:!` on failure."""
    from dmux_async import status_line

    try:
        status_line.check_format(fmt)
        counts = _run(ctx, None, lambda c: status_line.read(c.engine))
    except Exception:  # a status line shows the marker; the reason goes to stderr
        typer.echo(status_line.FAILED)
        raise

    typer.echo(status_line.render(counts, fmt))


@app.command()
def doctor(
    ctx: typer.Context,
    only: Annotated[list[str] | None, typer.Option(
        "--only", metavar="PART", help="engine, tmux, hooks or watcher; repeat it for several",
    )] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="no report, only the exit code")]
    = False,
) -> None:
    """Check the engine, the tmux server, the watcher's hooks and the watcher: one line each."""
    from dmux_async import health
    from dmux_async.place import find_place

    call: Invocation = ctx.obj
    parts = [_choice(health.Part, p, "--only") for p in only] if only else list(health.Part)
    place = find_place(call.environ, call.socket_name, call.socket_path)
    checks = health.diagnose(place, call.environ, parts)

    if not quiet:
        typer.echo(health.report(checks))

    if not all(check.ok for check in checks):
        raise typer.Exit(ExitCode.USER_ERROR)


@app.command()
def menu(
    ctx: typer.Context,
    target: Target = None,
    client: Annotated[str | None, typer.Option("-c", "--client", help="tmux client to show it on")]
    = None,
    runner: Annotated[str | None, typer.Option(
        "--runner", help="run each choice as RUNNER SOCKET CLIENT ARGS... (contrib/scripts/run)",
    )] = None,
) -> None:
    """Show a tmux menu of the containers with no pane; the one chosen is started beside."""
    from dmux_async import menu as chooser
    from dmux_async.place import find_place

    call: Invocation = ctx.obj
    place = find_place(call.environ, call.socket_name, call.socket_path, target)
    chooser.show(place, call.environ, _roster(ctx), client, runner)


service_app = typer.Typer(help="A systemd user service that runs dmux watch.",
                          rich_markup_mode=None)
app.add_typer(service_app, name="service")


@service_app.command("install")
def service_install(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="replace a unit file you edited")]
    = False,
) -> None:
    """Write the user unit dmux-watch@.service; print the systemctl lines that start it."""
    from dmux_async import service_unit
    from dmux_async.executable import dmux_executable

    call: Invocation = ctx.obj
    instance = service_unit.instance_of(call.environ, call.socket_name, call.socket_path)
    exec_start = service_unit.exec_word(dmux_executable(call.environ))
    typer.echo(service_unit.install(call.environ, exec_start, instance, force).report())


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
        _fail(f"{exc.format_message()} (see `dmux --help`)")
        return ExitCode.USER_ERROR
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted")
        return 130
    except DmuxError as exc:
        _fail(str(exc))
        return exc.exit_code
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if environ.get("DMUX_DEBUG"):
            raise

        _fail(f"unexpected {type(exc).__name__}: {exc} (set DMUX_DEBUG=1 for a traceback)")
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


def _run(
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
        raise _first_dmux_error(group) from group


def _roster(ctx: typer.Context) -> "list[roster.Entry]":
    """The server's containers: from the watcher if one answers, else read here."""
    from dmux_async import commands, roster

    call: Invocation = ctx.obj
    listed = roster.from_watcher(call.environ, call.cwd, call.socket_name, call.socket_path)
    return listed if listed is not None else roster.from_rows(_run(ctx, None, commands.rows))


def _first_dmux_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_dmux_error(exc)

        if isinstance(exc, DmuxError):
            return exc

    return group.exceptions[0]


def _report(outcome: "commands.Outcome", as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(asdict(outcome)))
        return

    typer.echo(outcome.name)

    if outcome.action == "already-paused":
        typer.echo(f"dmux: {outcome.name} was already paused", err=True)


def _choice(kind: type[T], value: str, option: str) -> T:
    try:
        return kind(value)  # type: ignore[call-arg]
    except ValueError:
        choices = ", ".join(str(v) for v in kind)  # type: ignore[attr-defined]
        raise typer.BadParameter(f"{option} must be one of {choices}, not {value!r}") from None


def _absolute_volume(spec: str, call: Invocation) -> str:
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


def _words(command: list[str] | None) -> list[str]:
    """A command given after its NAME: a ``--`` that reaches us is only a separator."""
    words = list(command or [])
    return words[1:] if words[:1] == ["--"] else words


def _fail(message: str) -> None:
    typer.echo(f"dmux: {message}", err=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
