"""Where the installed ``dmux`` command is, for what runs it later with another PATH.

A tmux menu or a systemd unit runs ``dmux`` without this shell's PATH, so they get an
absolute path. The ``dmux`` beside this Python comes first: a pyenv shim found on PATH
picks its Python by the folder it runs in, which a unit or a menu does not share.
"""

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from dmux_async.errors import UserError


def dmux_executable(environ: Mapping[str, str]) -> str:
    """The absolute path of the ``dmux`` command that belongs to this installation."""
    beside = Path(sys.executable).parent / "dmux"

    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)

    found = shutil.which("dmux", path=environ.get("PATH"))

    if found:
        return os.path.abspath(found)

    raise UserError("cannot find the installed dmux command: install dmux "
                    "(`pip install dmux`) so that `dmux` is on PATH")
