"""What dmux reads from Docker's container list and tmux's panes."""

from typing import Any

import pytest

from dmux_async.model import (
    LABEL_AUTO_PAUSE,
    LABEL_NAME,
    LABEL_TMUX,
    Container,
    Pane,
    State,
    panes_of,
    state_of,
)

ID = "f" * 64
OTHER_ID = "e" * 64
SOCKET = "/tmp/tmux-0/work"


def entry(
    name: str = "calm-otter",
    names: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One container as ``GET /containers/json`` lists it."""
    return {
        "Id": ID,
        "Names": [f"/{name}"] if names is None else names,
        "Image": "dmux-test/busybox:1",
        "State": "running",
        "Created": 1_700_000_000,
        "Labels": {LABEL_NAME: name, LABEL_TMUX: SOCKET, LABEL_AUTO_PAUSE: "1", **(labels or {})},
    }


def container(status: str, id_: str = ID) -> Container:
    return Container(id_, "calm-otter", "busybox", status, 1.0, SOCKET, auto_pause=True)


def pane(container_id: str = ID, dead: bool = False, pane_id: str = "%1") -> Pane:
    return Pane(pane_id, container_id, "main", "0", dead)


def test_from_listing_reads_a_dmux_container() -> None:
    found = Container.from_listing(entry())

    assert found == Container(
        id=ID,
        name="calm-otter",
        image="dmux-test/busybox:1",
        status="running",
        created=1_700_000_000.0,
        tmux=SOCKET,
        auto_pause=True,
    )
    assert found is not None
    assert isinstance(found.created, float)
    assert found.short_id == "f" * 12


def test_from_listing_reads_auto_pause_off() -> None:
    found = Container.from_listing(entry(labels={LABEL_AUTO_PAUSE: "0"}))

    assert found is not None
    assert found.auto_pause is False


def test_from_listing_defaults_auto_pause_on() -> None:
    raw = entry()
    del raw["Labels"][LABEL_AUTO_PAUSE]

    found = Container.from_listing(raw)

    assert found is not None
    assert found.auto_pause is True


def test_from_listing_rejects_a_copy_made_by_hand_from_a_committed_image() -> None:
    """Labels come with the image; the docker name does not."""
    copy = entry(name="calm-otter", names=["/my-copy"])

    assert Container.from_listing(copy) is None


def test_from_listing_accepts_the_name_among_several() -> None:
    found = Container.from_listing(entry(names=["/linked/alias", "/calm-otter"]))

    assert found is not None
    assert found.name == "calm-otter"


@pytest.mark.parametrize(
    "raw",
    [
        {"Id": ID, "Names": ["/calm-otter"], "Labels": {}},
        {"Id": ID, "Names": ["/calm-otter"], "Labels": None},
        {"Id": ID, "Names": ["/calm-otter"]},
        {"Id": ID, "Names": ["/calm-otter"], "Labels": {LABEL_NAME: ""}},
        {"Id": ID, "Names": None, "Labels": {LABEL_NAME: "calm-otter"}},
    ],
    ids=["no-labels", "null-labels", "labels-missing", "blank-name", "no-names"],
)
def test_from_listing_rejects_containers_dmux_did_not_make(raw: dict[str, Any]) -> None:
    assert Container.from_listing(raw) is None


def test_from_listing_tolerates_missing_optional_fields() -> None:
    found = Container.from_listing(
        {"Id": ID, "Names": ["/calm-otter"], "Labels": {LABEL_NAME: "calm-otter"}}
    )

    assert found == Container(ID, "calm-otter", "", "", 0.0, "", auto_pause=True)


def test_paused_is_paused_even_with_a_pane() -> None:
    assert state_of(container("paused"), [pane()]) is State.PAUSED


@pytest.mark.parametrize("status", ["running", "restarting"])
def test_running_with_a_live_pane_is_attached(status: str) -> None:
    assert state_of(container(status), [pane()]) is State.ATTACHED


@pytest.mark.parametrize(
    "panes",
    [[], [pane(dead=True)], [pane(OTHER_ID)]],
    ids=["no-pane", "dead-pane", "another-containers-pane"],
)
def test_running_without_a_live_pane_is_detached(panes: list[Pane]) -> None:
    assert state_of(container("running"), panes) is State.DETACHED


def test_created_is_created() -> None:
    assert state_of(container("created"), [pane()]) is State.CREATED


@pytest.mark.parametrize("status", ["exited", "dead", "removing", ""])
def test_anything_else_is_exited(status: str) -> None:
    assert state_of(container(status), [pane()]) is State.EXITED


def test_panes_of_lists_only_the_live_panes_of_that_container() -> None:
    mine = pane(pane_id="%1")
    dead = pane(pane_id="%2", dead=True)
    theirs = pane(OTHER_ID, pane_id="%3")
    also_mine = pane(pane_id="%4")

    assert panes_of(container("running"), [mine, dead, theirs, also_mine]) == [mine, also_mine]
