"""Which container a command is about: by name or id prefix, else from where it runs."""

from collections.abc import Callable

from dmux_async import names
from dmux_async.context import Context, snapshot
from dmux_async.errors import UserError
from dmux_async.model import Container, panes_of
from dmux_async.panes import Layout

Candidates = Callable[[Container, Layout, str | None], bool]


async def resolve(
    ctx: Context, query: str | None, verb: str, candidate: Candidates
) -> tuple[Container, Layout]:
    """The container a command is about: by name or id prefix, else from where it runs.

    With no name: the container shown in the current pane, else the only candidate in
    the current session, else an error that lists the candidates.
    """
    containers, layout = await snapshot(ctx)

    if query is not None:
        return names.resolve(query, containers), layout

    here = await where_run(ctx, layout)
    shown = [p.container_id for p in layout.tagged if p.pane_id == here[0]]
    current = [c for c in containers if c.id in shown]

    if current:
        return current[0], layout

    candidates = [c for c in containers if candidate(c, layout, here[1])]
    return names.pick_only(candidates, verb), layout


async def where_run(ctx: Context, layout: Layout) -> tuple[str | None, str | None]:
    """The current pane and session: from ``-t``, else ``$TMUX_PANE``; none outside tmux."""
    anchor = ctx.place.anchor

    if anchor is None:
        return None, None

    if anchor in layout.sessions:
        return anchor, layout.sessions[anchor]

    pane, _, session = (await ctx.tmux.describe(anchor)).partition("\t")
    return pane, session


def in_session(container: Container, layout: Layout, session: str | None) -> bool:
    shown = panes_of(container, layout.tagged)
    return any(p.session == session for p in shown) if session else bool(shown)


def stoppable(container: Container, layout: Layout, session: str | None) -> bool:
    return container.status == "running" and in_session(container, layout, session)


def shown_here(container: Container, layout: Layout, session: str | None) -> bool:
    return in_session(container, layout, session)


def startable(container: Container, layout: Layout, session: str | None) -> bool:
    return not panes_of(container, layout.tagged)


async def for_start(
    ctx: Context, queries: list[str], every: bool
) -> tuple[list[Container], Layout]:
    """The containers a start is about, each once, in the order given."""
    if not every:
        if len(queries) <= 1:
            query = queries[0] if queries else None
            container, layout = await resolve(ctx, query, "start", startable)
            return [container], layout

        containers, layout = await snapshot(ctx)
        found = [names.resolve(q, containers) for q in queries]
        return list({c.id: c for c in found}.values()), layout

    containers, layout = await snapshot(ctx)
    chosen = [c for c in containers if startable(c, layout, None)]

    if not chosen:
        raise UserError("no paused, detached or exited dmux container to start")

    return sorted(chosen, key=lambda c: c.created), layout
