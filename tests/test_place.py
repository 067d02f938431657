"""Which tmux server and pane a command runs against, decided like tmux decides."""

import os
from pathlib import Path

import pytest

from dmux_async.place import Place, find_place, make_server_files, server_files, tmux_dir

UID = os.getuid()


def real(path: str | Path) -> str:
    return os.path.realpath(path)


def default_socket(base: str = "/tmp") -> str:
    return real(f"{base}/tmux-{UID}/default")


def test_socket_path_option_wins(tmp_path: Path) -> None:
    environ = {"TMUX": "/tmp/elsewhere,1,0", "TMUX_PANE": "%1"}

    place = find_place(environ, socket_name="ignored", socket_path=str(tmp_path / "sock"))

    assert place == Place(socket_path=real(tmp_path / "sock"), pane=None, target=None)


def test_socket_path_is_resolved_through_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")

    place = find_place({}, socket_path=str(tmp_path / "link" / "sock"))

    assert place.socket_path == real(tmp_path / "real" / "sock")


def test_socket_name_without_tmux_tmpdir_lives_in_tmp() -> None:
    assert find_place({}, socket_name="work").socket_path == real(f"/tmp/tmux-{UID}/work")


def test_socket_name_honours_tmux_tmpdir(tmp_path: Path) -> None:
    place = find_place({"TMUX_TMPDIR": str(tmp_path)}, socket_name="work")

    assert place.socket_path == real(tmp_path / f"tmux-{UID}" / "work")
    assert tmux_dir({"TMUX_TMPDIR": str(tmp_path)}) == tmp_path / f"tmux-{UID}"


def test_empty_tmux_tmpdir_means_tmp() -> None:
    assert tmux_dir({"TMUX_TMPDIR": ""}) == Path(f"/tmp/tmux-{UID}")


def test_no_option_and_no_tmux_means_the_default_server() -> None:
    assert find_place({}) == Place(socket_path=default_socket(), pane=None, target=None)


def test_default_server_honours_tmux_tmpdir(tmp_path: Path) -> None:
    place = find_place({"TMUX_TMPDIR": str(tmp_path)})

    assert place.socket_path == default_socket(str(tmp_path))


def test_inside_tmux_the_server_and_pane_come_from_the_environment() -> None:
    environ = {"TMUX": "/tmp/tmux-0/work,4242,3", "TMUX_PANE": "%7"}

    assert find_place(environ) == Place(real("/tmp/tmux-0/work"), pane="%7", target=None)


def test_tmux_socket_path_may_contain_commas(tmp_path: Path) -> None:
    socket = tmp_path / "a,b,c" / "sock,et"
    environ = {"TMUX": f"{socket},4242,0", "TMUX_PANE": "%2"}

    place = find_place(environ)

    assert place.socket_path == real(socket)
    assert place.pane == "%2"


@pytest.mark.parametrize("value", ["", "garbage", "/tmp/sock,123", ",123,0"])
def test_malformed_tmux_is_ignored(value: str) -> None:
    place = find_place({"TMUX": value, "TMUX_PANE": "%1"})

    assert place == Place(socket_path=default_socket(), pane=None, target=None)


def test_tmux_pane_counts_when_tmux_names_the_chosen_server() -> None:
    environ = {"TMUX": f"/tmp/tmux-{UID}/work,1,0", "TMUX_PANE": "%5"}

    assert find_place(environ, socket_name="work").pane == "%5"


def test_tmux_pane_counts_when_tmux_names_the_same_server_through_a_symlink(
    tmp_path: Path,
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    environ = {"TMUX": f"{tmp_path / 'link' / 'sock'},1,0", "TMUX_PANE": "%5"}

    place = find_place(environ, socket_path=str(tmp_path / "real" / "sock"))

    assert place.pane == "%5"


def test_tmux_pane_is_ignored_for_another_server_by_name() -> None:
    environ = {"TMUX": f"/tmp/tmux-{UID}/work,1,0", "TMUX_PANE": "%5"}

    place = find_place(environ, socket_name="other")

    assert place.socket_path == real(f"/tmp/tmux-{UID}/other")
    assert place.pane is None


def test_tmux_pane_is_ignored_for_another_server_by_path(tmp_path: Path) -> None:
    environ = {"TMUX": f"{tmp_path / 'one'},1,0", "TMUX_PANE": "%5"}

    assert find_place(environ, socket_path=str(tmp_path / "two")).pane is None


def test_tmux_pane_without_tmux_is_ignored() -> None:
    assert find_place({"TMUX_PANE": "%5"}).pane is None


def test_empty_tmux_pane_is_no_pane() -> None:
    assert find_place({"TMUX": "/tmp/s,1,0", "TMUX_PANE": ""}).pane is None


def test_target_is_the_anchor_before_the_current_pane() -> None:
    place = find_place({"TMUX": "/tmp/s,1,0", "TMUX_PANE": "%5"}, target="work:2")

    assert place.target == "work:2"
    assert place.pane == "%5"
    assert place.anchor == "work:2"


def test_current_pane_is_the_anchor_without_a_target() -> None:
    place = find_place({"TMUX": "/tmp/s,1,0", "TMUX_PANE": "%5"}, target="")

    assert place.target is None
    assert place.anchor == "%5"


def test_no_anchor_outside_tmux_without_a_target() -> None:
    assert find_place({}).anchor is None


def test_server_files_sit_beside_the_socket_whatever_the_environment() -> None:
    assert server_files("/tmp/tmux-0/default") == Path("/tmp/tmux-0/default.dmux")


def test_make_server_files_makes_tmux_folder_private(tmp_path: Path) -> None:
    folder = make_server_files(str(tmp_path / "tmux-9" / "work"))

    assert folder == tmp_path / "tmux-9" / "work.dmux"
    assert (tmp_path / "tmux-9").stat().st_mode & 0o777 == 0o700
    assert folder.stat().st_mode & 0o777 == 0o700
