"""The watcher's Unix socket: runs dmux command lines for the thin ``dmux`` client.

A request is one JSON object (``argv``, ``environ``, ``cwd``) and the reply one JSON
object (``code``, ``stdout``, ``stderr``), or ``{"declined": true}`` when the client must
run the command itself: it asked for another Docker engine than the watcher's, or for
work that belongs in its own process (pulling an image, with progress on its terminal).

Requests run one at a time, in a worker thread, through the same command line code as
``dmux`` run by hand. The command output is captured by swapping ``sys.stdout`` and
``sys.stderr``, which is process-wide; running them one at a time keeps that safe, and
costs little since every change takes the server lock anyway.
"""

import contextlib
import io
import json
import time
from collections.abc import Mapping
from typing import Any

import anyio
import structlog
from anyio.abc import SocketStream

from dmux_async.cli import run_cli
from dmux_async.endpoint import resolve
from dmux_async.errors import DmuxError, HandBack

log = structlog.get_logger("dmux.watch")

REQUEST_LIMIT = 1024 * 1024


class Service:
    """Serves command requests on one listening socket."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._turn = anyio.Lock()

    async def handle(self, stream: SocketStream) -> None:
        async with stream:
            try:
                request = await _read_request(stream)
            except (ValueError, TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                log.warning("request_rejected", reason=str(exc))
                return

            try:
                reply = await self._answer(request)
            except Exception as exc:  # a bad request must never take the watcher down
                log.exception("request_failed", command=request.get("argv"))
                reply = {"code": 3, "stdout": "",
                         "stderr": f"dmux: the watcher failed on this command: {exc!r}\n"}

            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stream.send(json.dumps(reply).encode())

    async def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        environ = request.get("environ")
        argv = request.get("argv")
        cwd = request.get("cwd")

        if not (isinstance(environ, dict) and isinstance(argv, list) and isinstance(cwd, str)):
            return {"declined": True}

        if not _same_engine(environ, self._environ):
            return {"declined": True}  # another engine: the client runs it against that

        # The thread runs to its end even if the watcher is told to stop meanwhile.
        with anyio.CancelScope(shield=True):
            async with self._turn:
                reply: dict[str, Any] = await anyio.to_thread.run_sync(_run, argv, environ, cwd)

        return reply


def _same_engine(caller: Mapping[str, str], own: Mapping[str, str]) -> bool:
    """Whether both environments lead to the same engine, by the ``docker`` client's rules.

    Compared resolved rather than variable by variable: a context chosen by
    ``docker context use`` lives in a file, not in any variable. An environment that
    names no usable engine declines, so that the client reports the error itself.
    """
    try:
        return resolve(caller) == resolve(own)
    except DmuxError:
        return False


def _run(argv: list[str], environ: dict[str, str], cwd: str) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()

    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_cli([str(a) for a in argv], environ, cwd, handed_over=True)
    except HandBack as back:
        log.info("request_handed_back", command=argv[:3], reason=str(back))
        return {"declined": True}

    log.info("request_handled", command=argv[:3], code=code,
             ms=round((time.perf_counter() - started) * 1000, 1))
    return {"code": int(code), "stdout": out.getvalue(), "stderr": err.getvalue()}


async def _read_request(stream: SocketStream) -> dict[str, Any]:
    data = b""

    with anyio.fail_after(10):
        while not data.endswith(b"\n"):
            try:
                data += await stream.receive()
            except anyio.EndOfStream:
                break

            if len(data) > REQUEST_LIMIT:
                raise ValueError("request too large")

    request = json.loads(data)

    if not isinstance(request, dict):
        raise ValueError("request is not a JSON object")

    return request
