"""The commands around the containers: config, watch, status, doctor, menu, service."""

from typing import Annotated

import typer

from dmux_async.cli.base import (
    Invocation,
    LogFormat,
    Target,
    app,
    choice,
    first_dmux_error,
    roster_of,
    run_action,
)
from dmux_async.errors import ExitCode
from dmux_async.status_line import DEFAULT_FORMAT as STATUS_FORMAT


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
    configure(call.environ, choice(LogFormat, log_format, "--log-format").value, log_level)
    watcher = Watcher(find_place(call.environ, call.socket_name, call.socket_path), call.environ)

    try:
        if once:
            anyio.run(watcher.once)
        else:
            anyio.run(watcher.run)
    except BaseExceptionGroup as group:
        raise first_dmux_error(group) from group


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
        counts = run_action(ctx, None, lambda c: status_line.read(c.engine))
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
    parts = [choice(health.Part, p, "--only") for p in only] if only else list(health.Part)
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
    chooser.show(place, call.environ, roster_of(ctx), client, runner)


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
