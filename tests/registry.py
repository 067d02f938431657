"""A Docker registry of the tests' own on 127.0.0.1, from Debian's `docker-registry` package.

Never the system service: the test starts `docker-registry serve` on a free port with its
storage in a temporary folder, and stops it by its pid. Engines allow plain http to
registries on 127.0.0.0/8, so no TLS is needed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from engines import free_port
from waiting import wait_until

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


@dataclass
class Registry:
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls) -> Registry:
        return cls(Path(tempfile.mkdtemp(prefix="dmxr-", dir="/tmp")), free_port())

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.root / "config.yml"
        config.write_text(CONFIG.format(root=self.root, port=self.port))

        with (self.root / "registry.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )

        wait_until(self._answers, timeout=30, what="the registry to answer")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

        shutil.rmtree(self.root, ignore_errors=True)

    def push(self, image: str, repository: str) -> str:
        """Push a local image of the system engine as ``ADDRESS/repository``; returns that."""
        remote = f"{self.address}/{repository}"
        subprocess.run(["docker", "tag", image, remote], check=True, capture_output=True)

        try:
            pushed = subprocess.run(["docker", "push", remote], capture_output=True, text=True,
                                    check=False)
            assert pushed.returncode == 0, pushed.stderr
        finally:
            subprocess.run(["docker", "rmi", remote], check=False, capture_output=True)

        return remote

    def _answers(self) -> bool:
        if self.process and self.process.poll() is not None:
            log = (self.root / "registry.log").read_text(errors="replace")
            raise AssertionError(f"the registry exited:\n{log[-2000:]}")

        try:
            with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False
