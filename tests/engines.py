"""Test engines of the tests' own: a private dockerd on a unix socket and a loopback tcp port.

Imported as a top-level module, like `images` (tests/ is on sys.path). The dockerd runs
on a bridge of its own (``--bridge none`` would make it delete the host's ``docker0``,
which the system engine needs) and makes no iptables changes; with `certs` it serves tcp
with TLS only. Each is stopped by its own pid and its folder removed.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from waiting import wait_until


def free_port() -> int:
    """A tcp port on 127.0.0.1 that nothing listens on at this moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Certs:
    """A test CA with one server and one client certificate, as dockerd and docker want them.

    ``client`` holds ca.pem, cert.pem and key.pem (a DOCKER_CERT_PATH); ``server`` the same
    names for dockerd's --tlscacert, --tlscert and --tlskey.
    """

    client: Path
    server: Path

    @classmethod
    def make(cls, folder: Path) -> Certs:
        ca_key, ca = folder / "ca-key.pem", folder / "ca.pem"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=dmux-test-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        server = _signed(folder, "server", ca, ca_key,
                         "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
        client = _signed(folder, "client", ca, ca_key, "extendedKeyUsage=clientAuth")
        return cls(client, server)


def _signed(folder: Path, role: str, ca: Path, ca_key: Path, extensions: str) -> Path:
    """A key and a certificate signed by the CA, with the CA beside them."""
    out = folder / role
    out.mkdir()
    request, ext = folder / f"{role}.csr", folder / f"{role}.ext"
    ext.write_text(extensions + "\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", out / "key.pem", "-out", request, "-subj", f"/CN=dmux-test-{role}")
    _openssl("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", out / "cert.pem", "-days", "2", "-extfile", ext)
    shutil.copy(ca, out / "ca.pem")
    return out


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


class SocketEngine:
    """What the tests' own engines share: a folder, a process, and a unix socket that the
    ``docker`` client reaches without TLS. Subclasses say where the socket is."""

    root: Path
    process: subprocess.Popen[bytes] | None

    @property
    def unix_host(self) -> str:
        raise NotImplementedError

    def docker(self, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """The docker client on the unix socket."""
        return subprocess.run(["docker", "-H", self.unix_host, *args], input=data,
                              capture_output=True, check=False)

    def load(self, image: str) -> None:
        """Copy an image from the system engine: `docker save | docker -H ... load`."""
        saved = subprocess.run(["docker", "save", image], capture_output=True, check=True)
        loaded = self.docker("load", data=saved.stdout)
        assert loaded.returncode == 0, loaded.stderr.decode()

    def status(self, name: str) -> str:
        found = self.docker("inspect", "-f", "{{.State.Status}}", name)
        return found.stdout.decode().strip() if found.returncode == 0 else "missing"

    def end(self, *, remove_containers: bool = True) -> None:
        """Remove every container (unless told not to), then stop the process by its pid."""
        if self.process and self.process.poll() is None:
            ids = self.docker("ps", "-aq").stdout.decode().split() if remove_containers else []

            if ids:
                self.docker("rm", "-f", *ids)

            self.process.terminate()
            self.process.wait(timeout=60)


@dataclass
class PrivateEngine(SocketEngine):
    """A dockerd of the test's own on ``root/docker.sock`` and ``tcp://127.0.0.1:port``."""

    root: Path
    port: int
    certs: Certs | None = None
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, certs: Certs | None = None) -> PrivateEngine:
        # A short folder: a unix socket's path must fit in 108 bytes.
        return cls(Path(tempfile.mkdtemp(prefix="dmxe-", dir="/tmp")), free_port(), certs)

    @property
    def unix_host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    @property
    def tcp_host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        tls = (["--tlsverify", "--tlscacert", str(self.certs.server / "ca.pem"),
                "--tlscert", str(self.certs.server / "cert.pem"),
                "--tlskey", str(self.certs.server / "key.pem")]
               if self.certs else ["--tls=false"])

        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True,
                          check=False).returncode:
            subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)

        with (self.root / "dockerd.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["dockerd", "--data-root", str(self.root / "data"),
                 "--exec-root", str(self.root / "x"), "--pidfile", str(self.root / "pid"),
                 "-H", self.unix_host, "-H", self.tcp_host, *tls,
                 "--bridge", self.bridge, "--iptables=false", "--ip-masq=false"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )

        wait_until(self._answers, timeout=60, what="the private dockerd to answer")

    @property
    def bridge(self) -> str:
        """This engine's own bridge: made by ``start``, deleted by ``stop``."""
        return f"dmx{self.port}"

    def stop(self) -> None:
        """Remove every container, then stop dockerd by its pid and remove its folder."""
        self.end()

        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self) -> str:
        path = self.root / "dockerd.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:]) if (
            path.exists()) else ""

    def _answers(self) -> bool:
        if self.process and self.process.poll() is not None:
            raise AssertionError(f"the private dockerd exited:\n{self.log_tail()}")

        return self.docker("info").returncode == 0


CONTAINERS_CONF = """\
[containers]
# Podman's default rlimits (nofile 1048576) exceed what some sandboxes allow: runc then
# fails with "error setting rlimits". Stay within this process's own limits.
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


@dataclass
class PodmanEngine(SocketEngine):
    """Podman's Docker-compatible API on ``root/podman.sock``, with storage of its own."""

    root: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls) -> PodmanEngine:
        return cls(Path(tempfile.mkdtemp(prefix="dmxp-", dir="/tmp")))

    @property
    def unix_host(self) -> str:
        return f"unix://{self.root}/podman.sock"

    def start(self) -> None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[0], 4096)
        conf = self.root / "containers.conf"
        conf.write_text(CONTAINERS_CONF.format(nofile=nofile, nproc=nproc))
        env = {**os.environ, "CONTAINERS_CONF": str(conf)}

        with (self.root / "podman.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["podman", "--root", str(self.root / "storage"), "--runroot",
                 str(self.root / "run"), "--tmpdir", str(self.root / "tmp"),
                 "system", "service", "--time=0", self.unix_host],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            )

        wait_until(self._answers, timeout=60, what="the podman service to answer")

    def stop(self) -> None:
        """Remove every container, then stop the service by its pid and remove its folder."""
        self.end()

        subprocess.run(["umount", "-R", str(self.root / "storage" / "overlay")],
                       capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _answers(self) -> bool:
        if self.process and self.process.poll() is not None:
            log = (self.root / "podman.log").read_text(errors="replace")
            raise AssertionError(f"the podman service exited:\n{log[-2000:]}")

        return self.docker("version").returncode == 0
