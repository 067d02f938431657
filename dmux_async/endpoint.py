"""Which Docker engine dmux talks to, and how to reach it, by the ``docker`` client's rules.

``$DOCKER_HOST`` (TLS from ``$DOCKER_TLS_VERIFY``/``$DOCKER_TLS`` and ``$DOCKER_CERT_PATH``),
else the current context (``$DOCKER_CONTEXT``, else ``currentContext`` in ``config.json``),
else the local socket. One resolved :class:`Endpoint` gives aiodocker its URL and TLS
settings and the ``docker`` client in a pane the flags that reach the same engine, whatever
the pane's own environment says.

Only the caller's environment is read (never ``os.environ``), with the files it points at.
"""

import hashlib
import json
import os
import pwd
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dmux_async.errors import EngineUnreachable, UserError

DEFAULT_CONTEXT = "default"
LOCAL_SOCKETS = ("/run/docker.sock", "/var/run/docker.sock")
DEFAULT_SOCKET = "/var/run/docker.sock"
PLAIN_PORT = 2375
TLS_PORT = 2376
CA, CERT, KEY = "ca.pem", "cert.pem", "key.pem"

# What the ``docker`` client in a pane must not take from the tmux server's environment:
# its flags name the engine, and these would add to them or contradict them.
CLIENT_VARIABLES = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY",
                    "DOCKER_CERT_PATH")

SSH_UNSUPPORTED = (
    "dmux cannot reach a Docker engine over ssh:// ({host}): forward its socket instead, "
    "e.g. `ssh -nNT -L /tmp/remote-docker.sock:/var/run/docker.sock HOST` and "
    "DOCKER_HOST=unix:///tmp/remote-docker.sock"
)


@dataclass(frozen=True)
class Tls:
    """TLS towards a tcp engine: whether the server's certificate is checked, and the files."""

    verify: bool
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """The client side of the TLS the ``docker`` client would speak with these files."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)

        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE

        try:
            if self.ca and self.verify:
                context.load_verify_locations(cafile=self.ca)

            if self.cert and self.key:
                context.load_cert_chain(self.cert, self.key, password=_no_password)
        except (OSError, ssl.SSLError) as exc:
            where = os.path.dirname(self.ca or self.cert or "") or "?"
            raise UserError(
                f"cannot use the TLS files in {where} ({exc}): they must be PEM files "
                f"{CA}, {CERT} and an unencrypted {KEY}"
            ) from exc

        return context

    def cli_flags(self) -> list[str]:
        flags = ["--tlsverify" if self.verify else "--tls"]

        for flag, path in (("--tlscacert", self.ca), ("--tlscert", self.cert),
                           ("--tlskey", self.key)):
            if path:
                flags += [flag, path]

        return flags


@dataclass(frozen=True)
class Endpoint:
    """One engine: its address as the ``docker`` client writes it, TLS, and its context."""

    host: str  # unix:///path or tcp://host:port
    tls: Tls | None = None
    context: str | None = None  # the context that named it, if not the default one
    config_dir: str | None = None  # where that context is stored

    @property
    def url(self) -> str:
        """The address aiodocker takes: ``unix://`` as is, ``tcp://`` as http or https."""
        if self.host.startswith("tcp://"):
            scheme = "https" if self.tls else "http"
            return f"{scheme}://{self.host.removeprefix('tcp://')}"

        return self.host

    def ssl_context(self) -> ssl.SSLContext | None:
        return self.tls.ssl_context() if self.tls else None

    def cli_flags(self) -> list[str]:
        """The ``docker`` client's global flags that reach this engine."""
        if self.context and self.config_dir:
            return ["--config", self.config_dir, "--context", self.context]

        return ["-H", self.host, *(self.tls.cli_flags() if self.tls else [])]

    def describe(self) -> str:
        """The engine in a user's words, for messages."""
        return f"{self.host} (context {self.context})" if self.context else self.host


def resolve(environ: Mapping[str, str]) -> Endpoint:
    """The engine the ``docker`` client would use in this environment.

    Settings too broken for the parsers (a half-written IPv6 host, a context file of the
    wrong shape) are the user's to fix: they come back as one-line errors, not crashes.
    """
    try:
        return _resolve(environ)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise UserError(f"cannot use this Docker engine setting: {exc} "
                        "(check DOCKER_HOST and the Docker context)") from exc


def _resolve(environ: Mapping[str, str]) -> Endpoint:
    config_dir = docker_config_dir(environ)
    host = environ.get("DOCKER_HOST", "")

    if host:
        address = parse_host(host, "DOCKER_HOST", tls=_env_wants_tls(environ))
        return Endpoint(address, _env_tls(environ, address, config_dir))

    context, source = current_context(environ, config_dir)

    if context != DEFAULT_CONTEXT:
        return _from_context(context, source, config_dir)

    return Endpoint(_local_socket())


def docker_config_dir(environ: Mapping[str, str]) -> Path:
    """``$DOCKER_CONFIG``, else ``~/.docker``, like the ``docker`` client."""
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"])

    home = environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    return Path(home) / ".docker"


def current_context(environ: Mapping[str, str], config_dir: Path) -> tuple[str, str]:
    """The context name and where it was set: ``$DOCKER_CONTEXT``, else ``config.json``."""
    if environ.get("DOCKER_CONTEXT"):
        return environ["DOCKER_CONTEXT"], "DOCKER_CONTEXT"

    config = config_dir / "config.json"

    try:
        current = json.loads(config.read_bytes()).get("currentContext")
    except FileNotFoundError:
        return DEFAULT_CONTEXT, "no config"
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"cannot read {config} ({exc}): fix it, or set DOCKER_HOST") from exc

    return (current, str(config)) if isinstance(current, str) and current else (
        DEFAULT_CONTEXT, str(config))


def context_dir_name(context: str) -> str:
    """Contexts are stored under the SHA-256 of their name."""
    return hashlib.sha256(context.encode()).hexdigest()


def parse_host(value: str, source: str, *, tls: bool = False) -> str:
    """A Docker host as ``unix:///path`` or ``tcp://host:port``; other schemes are refused."""
    scheme, sep, rest = value.partition("://")

    if not sep:  # the ``docker`` client reads a bare host[:port] as tcp
        scheme, rest = "tcp", value

    scheme = scheme.lower()

    if scheme == "ssh":
        raise UserError(SSH_UNSUPPORTED.format(host=value))

    if scheme == "unix":
        return f"unix://{rest or DEFAULT_SOCKET}"

    if scheme == "tcp":
        return _tcp_host(value, rest, source, tls)

    raise UserError(
        f"unsupported Docker host {value!r} (from {source}): dmux reaches engines at "
        "unix:///PATH or tcp://HOST:PORT"
    )


def _tcp_host(value: str, rest: str, source: str, tls: bool) -> str:
    parts = urlsplit(f"tcp://{rest}")

    try:
        port = parts.port or (TLS_PORT if tls else PLAIN_PORT)
    except ValueError:
        port = 0

    if not port or parts.path not in ("", "/") or parts.query or parts.username:
        raise UserError(f"invalid Docker host {value!r} (from {source}): use tcp://HOST:PORT")

    hostname = parts.hostname or "localhost"
    shown = f"[{hostname}]" if ":" in hostname else hostname
    return f"tcp://{shown}:{port}"


def _env_wants_tls(environ: Mapping[str, str]) -> bool:
    """Any non-empty value turns TLS on, ``0`` included, as in the ``docker`` client."""
    return bool(environ.get("DOCKER_TLS_VERIFY") or environ.get("DOCKER_TLS"))


def _env_tls(environ: Mapping[str, str], address: str, config_dir: Path) -> Tls | None:
    """TLS for ``$DOCKER_HOST`` from ``$DOCKER_TLS_VERIFY``/``$DOCKER_TLS``, if tcp."""
    if not (_env_wants_tls(environ) and address.startswith("tcp://")):
        return None

    verify = bool(environ.get("DOCKER_TLS_VERIFY"))
    folder = Path(environ.get("DOCKER_CERT_PATH") or config_dir)
    ca, cert, key = (_existing(folder / name) for name in (CA, CERT, KEY))

    if verify and ca is None:
        raise UserError(
            f"DOCKER_TLS_VERIFY is set but {folder / CA} does not exist: set DOCKER_CERT_PATH "
            f"to the folder that holds {CA}, {CERT} and {KEY}"
        )

    return Tls(verify, ca, cert, key)


def _from_context(context: str, source: str, config_dir: Path) -> Endpoint:
    """The Docker endpoint stored in a context made by ``docker context create``."""
    digest = context_dir_name(context)
    meta = config_dir / "contexts" / "meta" / digest / "meta.json"

    try:
        stored = json.loads(meta.read_bytes())
    except FileNotFoundError:
        raise UserError(
            f"Docker context {context!r} (from {source}) does not exist: `docker context ls` "
            "lists them; `docker context use default` picks the local engine"
        ) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read Docker context {context!r} from {meta}: {exc}") from exc

    docker = (stored.get("Endpoints") or {}).get("docker") if isinstance(stored, dict) else None
    host = docker.get("Host") if isinstance(docker, dict) else None

    if not isinstance(docker, dict) or not isinstance(host, str) or not host:
        raise UserError(f"Docker context {context!r} has no Docker host: see {meta}")

    tls_dir = config_dir / "contexts" / "tls" / digest / "docker"
    tls = _context_tls(tls_dir, bool(docker.get("SkipTLSVerify")))
    address = parse_host(host, f"context {context}", tls=tls is not None)
    return Endpoint(address, tls if address.startswith("tcp://") else None, context,
                    str(config_dir))


def _context_tls(folder: Path, skip_verify: bool) -> Tls | None:
    """A context speaks TLS when it stores TLS files or says to skip their verification."""
    ca, cert, key = (_existing(folder / name) for name in (CA, CERT, KEY))

    if not (ca or cert or key or skip_verify):
        return None

    return Tls(not skip_verify, ca, cert, key)


def _local_socket() -> str:
    for path in LOCAL_SOCKETS:
        if os.path.exists(path):
            return f"unix://{path}"

    raise EngineUnreachable(
        f"no Docker engine found (no {DEFAULT_SOCKET}): start dockerd, or set DOCKER_HOST "
        "or a Docker context"
    )


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def _no_password() -> bytes:
    """Never prompt for a key's passphrase: a watcher has no terminal to prompt on."""
    raise UserError("the TLS key is encrypted: dmux, like the docker client, needs it decrypted")
