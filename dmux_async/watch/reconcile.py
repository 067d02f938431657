"""Compare what Docker says with what tmux says, and decide what to do about the difference.

This is level-triggered: whatever woke the watcher (a hook, an engine event, the periodic
resync), it reads the whole state afresh and acts on it, so a missed, doubled or coalesced
signal cannot leave a container running unseen nor freeze one that is shown.
"""

from dataclasses import dataclass
from enum import StrEnum

from dmux_async.model import Container, Pane, panes_of


class Verb(StrEnum):
    PAUSE = "pause"
    CLOSE_PANE = "close-pane"


@dataclass(frozen=True)
class Action:
    """One thing to do, with the reason that goes into the log."""

    verb: Verb
    container: Container | None
    pane: Pane | None
    reason: str


def decide(containers: list[Container], panes: list[Pane] | None) -> list[Action]:
    """What to do, given the engine's containers and tmux's tagged panes.

    ``panes`` is ``None`` when no tmux server runs: then no container has a pane. A tmux
    query that failed or timed out must never reach here as an empty list.
    """
    shown = panes or []
    reason = "tmux-server-gone" if panes is None else "pane-gone"
    actions = [
        Action(Verb.PAUSE, c, None, reason)
        for c in containers
        if c.status == "running" and c.auto_pause and not panes_of(c, shown)
    ]
    by_id = {c.id: c for c in containers}

    for pane in shown:
        owner = by_id.get(pane.container_id)

        if owner is None:
            actions.append(Action(Verb.CLOSE_PANE, None, pane, "container-removed"))
        elif owner.status in ("exited", "dead") or (pane.dead and owner.status != "running"):
            actions.append(Action(Verb.CLOSE_PANE, owner, pane, "container-exited"))

    return actions
