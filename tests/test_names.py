"""Container names: Docker's naming rule, generated names, and resolving what was typed."""

from collections.abc import Callable

import pytest

from dmux_async.errors import UserError
from dmux_async.model import Container
from dmux_async.names import check_name, generate_name, pick_only, resolve


def container(name: str, id_: str, status: str = "running") -> Container:
    return Container(
        id=id_,
        name=name,
        image="busybox",
        status=status,
        created=1_700_000_000.0,
        tmux="/tmp/tmux-0/default",
        auto_pause=True,
    )


def fake_randbelow(*values: int) -> tuple[Callable[[int], int], list[int]]:
    """A randbelow that returns ``values`` in turn, then the last one forever; records bounds."""
    bounds: list[int] = []
    queue = list(values)

    def randbelow(bound: int) -> int:
        bounds.append(bound)
        value = queue.pop(0) if len(queue) > 1 else queue[0]
        assert 0 <= value < bound
        return value

    return randbelow, bounds


ALPHA = container("alpha", "a1b2c3" + "0" * 58)
BRAVO = container("bravo", "a1ffff" + "0" * 58)
CHARLIE = container("charlie", "c0ffee" + "0" * 58)
ALL = [ALPHA, BRAVO, CHARLIE]


@pytest.mark.parametrize(
    "name", ["a", "7", "calm-otter", "A1_b.c-d", "x" * 64, "web.1", "UPPER"]
)
def test_check_name_accepts_docker_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-dash-first",
        ".dot-first",
        "_underscore-first",
        "with space",
        "semi;touch /tmp/x",
        "dollar$(id)",
        "slash/name",
        "tab\tname",
        "trailing-newline\n",
        "x" * 65,
        "café",
        "#{session_name}",
    ],
)
def test_check_name_rejects_what_docker_rejects(name: str) -> None:
    with pytest.raises(UserError, match="invalid container name") as caught:
        check_name(name)

    assert repr(name) in str(caught.value)


def test_generate_name_draws_an_adjective_and_a_noun() -> None:
    randbelow, bounds = fake_randbelow(2, 3)

    assert generate_name(set(), randbelow) == "calm-crane"
    assert bounds == [26, 26]


def test_generate_name_skips_taken_names() -> None:
    randbelow, _ = fake_randbelow(0, 0, 0, 1)

    assert generate_name({"amber-badger"}, randbelow) == "amber-beaver"


def test_generate_name_adds_a_number_after_twenty_collisions() -> None:
    randbelow, bounds = fake_randbelow(0)

    assert generate_name({"amber-badger"}, randbelow) == "amber-badger-20"
    assert len(bounds) == 2 * 21


def test_generate_name_gives_up_with_a_hint() -> None:
    randbelow, _ = fake_randbelow(0)
    taken = {"amber-badger"} | {f"amber-badger-{i}" for i in range(20, 100)}

    with pytest.raises(UserError, match="pass --name"):
        generate_name(taken, randbelow)


def test_generated_names_are_valid_container_names() -> None:
    for _ in range(50):
        assert check_name(generate_name(set()))


def test_resolve_by_exact_name() -> None:
    assert resolve("bravo", ALL) is BRAVO


def test_resolve_prefers_a_name_over_an_id_prefix() -> None:
    named_like_an_id = container("c0ffee", "d" * 64)

    assert resolve("c0ffee", [CHARLIE, named_like_an_id]) is named_like_an_id


@pytest.mark.parametrize("prefix", ["c", "c0ff", "C0FFEE", CHARLIE.id])
def test_resolve_by_unique_id_prefix(prefix: str) -> None:
    assert resolve(prefix, ALL) is CHARLIE


def test_resolve_rejects_an_ambiguous_prefix_and_lists_the_matches() -> None:
    with pytest.raises(UserError, match="ambiguous") as caught:
        resolve("a1", ALL)

    assert "alpha, bravo" in str(caught.value)
    assert "charlie" not in str(caught.value)


@pytest.mark.parametrize("query", ["delta", "ff", "alph"])
def test_resolve_rejects_an_unknown_query(query: str) -> None:
    with pytest.raises(UserError, match="dmux ls") as caught:
        resolve(query, ALL)

    assert repr(query) in str(caught.value)


@pytest.mark.parametrize("query", ["", " "])
def test_resolve_rejects_an_empty_query(query: str) -> None:
    """An empty NAME (``dmux stop "$UNSET"``) must never match, not even every id."""
    with pytest.raises(UserError):
        resolve(query, [ALPHA])


def test_resolve_with_no_containers() -> None:
    with pytest.raises(UserError, match="no dmux container"):
        resolve("alpha", [])


def test_pick_only_returns_the_single_candidate() -> None:
    assert pick_only([BRAVO], "stop") is BRAVO


def test_pick_only_without_candidates_asks_for_a_name() -> None:
    with pytest.raises(UserError, match="no container to stop here; pass a NAME"):
        pick_only([], "stop")


def test_pick_only_with_several_candidates_lists_them_sorted() -> None:
    with pytest.raises(UserError) as caught:
        pick_only([CHARLIE, ALPHA], "start")

    assert str(caught.value) == "which container to start? pass a NAME: alpha, charlie"
