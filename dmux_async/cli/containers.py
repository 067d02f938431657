"""The container commands: init, stop, start, delete, exec, save and ls."""

import json
import os
import sys
from dataclasses import asdict
from typing import Annotated

import typer

from dmux_async import completion
from dmux_async.cli.base import (
    AsJson,
    Invocation,
    Name,
    RunningName,
    Target,
    absolute_volume,
    app,
    choice,
    report,
    run_action,
    words_after,
)


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
    flags = settings.flag_layer(image=image, command=words_after(command) or None, volumes=volume,
                                env=env, workdir=workdir, split=split, auto_pause=auto_pause)
    chosen = settings.load(call.environ, flags)
    volumes = [absolute_volume(v, call) for v in chosen.volumes]
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
    report(run_action(ctx, target, lambda c: commands.init(c, request, show_pull)), as_json)


@app.command()
def stop(ctx: typer.Context, name: RunningName = None, target: Target = None) -> None:
    """Freeze a container (docker pause) and close its pane."""
    from dmux_async import commands

    report(run_action(ctx, target, lambda c: commands.stop(c, name)), False)


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
        split=choice(Split, split, "--split") if split else None,
    )
    outcomes = run_action(ctx, target, lambda c: commands.start(c, request))

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
        outcome = run_action(ctx, target, lambda c: commands.delete(c, name, force))
    except commands.HasChanges as exc:
        if not call.interactive or not typer.confirm(f"{exc} -- delete it anyway?", err=True):
            raise

        confirmed = exc.name
        outcome = run_action(ctx, target, lambda c: commands.delete(c, confirmed, force=True))

    report(outcome, False)


@app.command("exec", context_settings={"allow_interspersed_args": False})
def exec_(
    ctx: typer.Context,
    name: Name = None,
    command: Annotated[list[str] | None, typer.Argument(help="default: sh")] = None,
    target: Target = None,
) -> None:
    """Open another shell (or COMMAND) in a running container, in a pane of its own."""
    from dmux_async import commands

    words = words_after(command)
    report(run_action(ctx, target, lambda c: commands.exec_in(c, name, words)), False)


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
    outcome = run_action(ctx, target, lambda c: commands.save(c, name, image))
    typer.echo(outcome.detail)


@app.command("ls")
def list_containers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, schema in the README")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="names only")] = False,
) -> None:
    """List this tmux server's dmux containers and their state."""
    from dmux_async import commands, listing

    rows = run_action(ctx, None, commands.rows)

    if as_json:
        typer.echo(listing.as_json(rows))
    elif quiet:
        typer.echo(listing.as_names(rows)) if rows else None
    else:
        typer.echo(listing.as_table(rows))
