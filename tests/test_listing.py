"""``dmux ls`` output: the table for people and the JSON schema for scripts."""

import json

import pytest

from dmux_async.commands import Row
from dmux_async.listing import age, as_json, as_names, as_table
from dmux_async.model import Container, Pane, State

NOW = 1_700_000_000.0
SCHEMA = {"name", "id", "image", "state", "pane", "session", "created", "auto_pause"}

SHOWN = Row(
    Container("a" * 64, "calm-otter", "dmux-test/busybox:1", "running", NOW - 90, "/s", True),
    State.ATTACHED,
    Pane("%3", "a" * 64, "work", "1", dead=False),
)
FROZEN = Row(
    Container("b" * 64, "quiet-lynx-21", "ubuntu", "paused", NOW - 7200, "/s", False),
    State.PAUSED,
    None,
)


def test_json_has_exactly_the_documented_keys() -> None:
    records = json.loads(as_json([SHOWN, FROZEN]))

    assert [set(record) for record in records] == [SCHEMA, SCHEMA]


def test_json_values() -> None:
    shown, frozen = json.loads(as_json([SHOWN, FROZEN]))

    assert shown == {
        "name": "calm-otter",
        "id": "a" * 64,
        "image": "dmux-test/busybox:1",
        "state": "attached",
        "pane": "%3",
        "session": "work",
        "created": NOW - 90,
        "auto_pause": True,
    }
    assert frozen["state"] == "paused"
    assert frozen["pane"] is None
    assert frozen["session"] is None
    assert frozen["auto_pause"] is False


def test_json_of_nothing_is_an_empty_list() -> None:
    assert json.loads(as_json([])) == []


def test_names_one_per_line() -> None:
    assert as_names([SHOWN, FROZEN]) == "calm-otter\nquiet-lynx-21"
    assert as_names([]) == ""


def test_table_columns_are_aligned() -> None:
    lines = as_table([SHOWN, FROZEN], now=NOW).splitlines()

    assert lines == [
        "NAME           IMAGE                STATE     PANE  SESSION  AGE",
        "calm-otter     dmux-test/busybox:1  attached  %3    work     1m",
        "quiet-lynx-21  ubuntu               paused    -     -        2h",
    ]


def test_table_of_nothing_is_the_header() -> None:
    assert as_table([], now=NOW) == "NAME  IMAGE  STATE  PANE  SESSION  AGE"


def test_table_has_no_trailing_spaces() -> None:
    wide = Row(FROZEN.container, State.EXITED, None)

    for line in as_table([SHOWN, wide], now=NOW).splitlines():
        assert line == line.rstrip()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (59.99, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (86399, "23h"),
        (86400, "1d"),
        (10 * 86400 + 5, "10d"),
        (-5, "0s"),
    ],
)
def test_age(seconds: float, shown: str) -> None:
    assert age(seconds) == shown
