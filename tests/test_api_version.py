"""dmux names API v1.41, and moves up when an engine refuses it as too old (Docker 29).

A fake engine on a unix socket answers like Docker 29: 400 for v1.41, its range on the
unversioned /version, and the call itself at v1.44.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from dmux_async import api_version
from dmux_async.engine import connect

TOO_OLD = ("client version 1.41 is too old. Minimum supported API version is 1.44, "
           "please upgrade your client to a newer version")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="dmxv-", dir="/tmp"))  # short: a socket path
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def fake_docker29(seen: list[str]) -> web.Application:
    async def version(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"ApiVersion": "1.52", "MinAPIVersion": "1.44"})

    async def containers(request: web.Request) -> web.Response:
        seen.append(request.path)

        if request.match_info["version"] != "v1.44":
            return web.json_response({"message": TOO_OLD}, status=400)

        return web.json_response([])

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/{version}/containers/json", containers)
    return app


def test_moves_up_to_the_oldest_version_a_newer_engine_takes(
    socket_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_version, "_spoken", {})
    sock = socket_dir / "docker.sock"
    seen: list[str] = []
    environ = {"DOCKER_HOST": f"unix://{sock}"}

    async def scenario() -> None:
        runner = web.AppRunner(fake_docker29(seen))
        await runner.setup()
        await web.UnixSite(runner, str(sock)).start()

        try:
            for _ in range(2):  # the second connection names v1.44 at once
                async with connect("/tmp/tmux-sock", environ) as engine:
                    assert await engine.containers() == []
        finally:
            await runner.cleanup()

    anyio.run(scenario)

    assert seen == ["/v1.41/containers/json", "/version", "/v1.44/containers/json",
                    "/v1.44/containers/json"]


def test_names_v141_by_default() -> None:
    assert api_version.version_for("unix:///nowhere.sock") == "v1.41"
