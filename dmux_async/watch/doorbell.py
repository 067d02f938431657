"""tmux hooks that wake the watcher, with no process started per hook.

Each hook runs tmux's own ``wait-for -S``: the server signals a channel that the watcher
waits on with one long-lived ``tmux wait-for`` client. A signal sent while nobody waits is
kept, and several fold into one, so nothing is lost between two waits. A hook is only a
hint; the reconcile that follows reads the whole state.

When the server dies no hook fires, but the waiting client ends: the watcher then finds
the server gone and waits for one to come back on the same socket, reinstalling the hooks.
"""

import subprocess
from collections.abc import Callable

import anyio
import structlog

from dmux_async.errors import TmuxUnreachable
from dmux_async.panes import Tmux

log = structlog.get_logger("dmux.watch")

CHANNEL = "dmux-watch"
# The slot in each hook array that dmux owns, so the user's own hooks stay as they are.
HOOK_INDEX = 7310
HOOKS = ("pane-exited", "pane-died", "after-kill-pane", "window-unlinked", "session-closed")
SERVER_POLL = 0.5


async def install_hooks(tmux: Tmux) -> None:
    """Point every hook that can mean 'a pane is gone' at the watcher's channel."""
    commands: list[str] = []

    for hook in HOOKS:
        commands += ["set-hook", "-g", f"{hook}[{HOOK_INDEX}]", f"wait-for -S {CHANNEL}", ";"]

    await tmux.arun(*commands[:-1])
    log.info("hooks_installed", hooks=list(HOOKS), channel=CHANNEL)


async def remove_hooks(tmux: Tmux) -> None:
    commands: list[str] = []

    for hook in HOOKS:
        commands += ["set-hook", "-gu", f"{hook}[{HOOK_INDEX}]", ";"]

    await tmux.arun(*commands[:-1])
    log.info("hooks_removed", hooks=list(HOOKS))


async def ring_forever(tmux: Tmux, wake: Callable[[str], None]) -> None:
    """Call ``wake`` on each hook signal, and when the server goes or comes back.

    ``tmux wait-for`` exits 0 both when signalled and when its server is killed; the
    next one then cannot connect, which tells the two apart without an extra query.
    """
    while True:
        await _wait_for_server(tmux, wake)

        while await _wait_for_signal(tmux):
            wake("tmux-hook")

        log.warning("tmux_server_gone", socket=tmux.socket_path)
        wake("tmux-server-gone")


async def _wait_for_server(tmux: Tmux, wake: Callable[[str], None]) -> None:
    """Return once a server answers on the socket, with the hooks installed."""
    waited = False

    while True:
        try:
            await install_hooks(tmux)
        except TmuxUnreachable:
            if not waited:
                log.info("tmux_server_waiting", socket=tmux.socket_path)
                waited = True

            await anyio.sleep(SERVER_POLL)
            continue

        if waited:
            log.info("tmux_server_back", socket=tmux.socket_path)
            wake("tmux-server-back")

        return


async def _wait_for_signal(tmux: Tmux) -> bool:
    """Block on the channel; ``False`` if the client could not reach the server."""
    process = await anyio.open_process(
        ["tmux", "-S", tmux.socket_path, "wait-for", CHANNEL],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    try:
        return await process.wait() == 0
    finally:
        if process.returncode is None:  # cancelled: no child outlives the watcher
            process.kill()

            with anyio.CancelScope(shield=True):
                await process.wait()
