"""What dmux knows about a container and a pane, read from Docker and tmux as they are now.

State lives where it is true: Docker labels on the containers dmux creates, and tmux user
options on the panes it opens. A pane option dies with its pane, so it can never point at a
container that is not shown; a container label is immutable, so it only says where the
container was made.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

LABEL_NAME = "dmux.name"
LABEL_TMUX = "dmux.tmux"
LABEL_AUTO_PAUSE = "dmux.auto-pause"
PANE_CONTAINER = "@dmux-container"
PANE_NAME = "@dmux-name"


class State(StrEnum):
    """What ``dmux ls`` shows: Docker's status refined by whether a pane shows it."""

    ATTACHED = "attached"
    DETACHED = "detached"
    PAUSED = "paused"
    EXITED = "exited"
    CREATED = "created"


@dataclass(frozen=True)
class Container:
    """A dmux container as the engine lists it."""

    id: str
    name: str
    image: str
    status: str
    created: float
    tmux: str
    auto_pause: bool

    @classmethod
    def from_listing(cls, entry: dict[str, Any]) -> "Container | None":
        """Read one entry of the engine's container list; ``None`` if dmux did not make it.

        Labels alone do not prove it: an image committed from a dmux container carries
        them to every container made from it. dmux names its containers after the
        ``dmux.name`` label, and a copy made by hand from such an image gets another name.
        """
        labels = entry.get("Labels") or {}
        names = [n.lstrip("/") for n in entry.get("Names") or []]
        name = labels.get(LABEL_NAME, "")

        if not name or name not in names:
            return None

        return cls(
            id=entry["Id"],
            name=name,
            image=entry.get("Image", ""),
            status=entry.get("State", ""),
            created=float(entry.get("Created", 0)),
            tmux=labels.get(LABEL_TMUX, ""),
            auto_pause=labels.get(LABEL_AUTO_PAUSE, "1") != "0",
        )

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class Pane:
    """A tmux pane that dmux opened and tagged with the container it shows."""

    pane_id: str
    container_id: str
    session: str
    window: str
    dead: bool


def state_of(container: Container, panes: list[Pane]) -> State:
    """Derive the state ``dmux ls`` shows from Docker's status and the live panes."""
    if container.status == "paused":
        return State.PAUSED

    if container.status in ("running", "restarting"):
        shown = any(p.container_id == container.id and not p.dead for p in panes)
        return State.ATTACHED if shown else State.DETACHED

    if container.status == "created":
        return State.CREATED

    return State.EXITED


def panes_of(container: Container, panes: list[Pane]) -> list[Pane]:
    """The live panes that show ``container``."""
    return [p for p in panes if p.container_id == container.id and not p.dead]
