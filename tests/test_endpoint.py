"""Which engine dmux talks to: the docker client's rules, and the pane reaching the same one.

Unit tests resolve environments and context files made in a temporary DOCKER_CONFIG. The
integration tests run a private dockerd on a loopback tcp port, plain and with TLS, and
check that init, stop and start work there and that the pane's attach reaches it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, cast

import aiodocker
import anyio
import pytest
from conftest import RunDmux, TmuxServer
from engines import Certs, PodmanEngine, PrivateEngine
from waiting import wait_until
from watching import events, running_watcher

from dmux_async import endpoint
from dmux_async.context import Context
from dmux_async.endpoint import Endpoint, Tls, resolve
from dmux_async.engine import Engine, _About, _explain, _translated, connect
from dmux_async.errors import EngineUnreachable, UserError
from dmux_async.panes import Tmux
from dmux_async.place import Place
from dmux_async.showing import docker_argv
from dmux_async.watch.service import _same_engine

# --- resolution ---------------------------------------------------------------------------


def make_context(config: Path, name: str, host: str, *, tls: Path | None = None,
                 skip_verify: bool = False) -> None:
    """A context as `docker context create` stores it."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    endpoint_data = {"Host": host, "SkipTLSVerify": skip_verify}
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint_data}}))

    if tls:
        stored = config / "contexts" / "tls" / digest / "docker"
        stored.mkdir(parents=True)

        for pem in ("ca.pem", "cert.pem", "key.pem"):
            shutil.copy(tls / pem, stored / pem)


def use_context(config: Path, name: str) -> None:
    (config / "config.json").write_text(json.dumps({"currentContext": name}))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "docker-config"
    folder.mkdir()
    return folder


@pytest.fixture
def pems(tmp_path: Path) -> Path:
    """Files named like TLS material; resolution only checks that they exist."""
    folder = tmp_path / "pems"
    folder.mkdir()

    for pem in ("ca.pem", "cert.pem", "key.pem"):
        (folder / pem).write_text("not read by resolve\n")

    return folder


@pytest.fixture
def local_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "docker.sock"
    path.touch()
    monkeypatch.setattr(endpoint, "LOCAL_SOCKETS", (str(path),))
    return f"unix://{path}"


def test_docker_host_unix() -> None:
    found = resolve({"DOCKER_HOST": "unix:///run/other.sock"})

    assert found == Endpoint("unix:///run/other.sock")
    assert found.url == "unix:///run/other.sock"
    assert found.cli_flags() == ["-H", "unix:///run/other.sock"]


def test_docker_host_beats_every_context(config: Path) -> None:
    make_context(config, "remote", "tcp://10.1.2.3:2375")
    use_context(config, "remote")
    environ = {"DOCKER_HOST": "tcp://127.0.0.1:2375", "DOCKER_CONTEXT": "remote",
               "DOCKER_CONFIG": str(config)}

    assert resolve(environ) == Endpoint("tcp://127.0.0.1:2375")


def test_docker_context_beats_current_context(config: Path) -> None:
    make_context(config, "one", "tcp://127.0.0.1:1111")
    make_context(config, "two", "unix:///tmp/two.sock")
    use_context(config, "one")

    found = resolve({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "two"})

    assert found == Endpoint("unix:///tmp/two.sock", None, "two", str(config))
    assert found.cli_flags() == ["--config", str(config), "--context", "two"]


def test_current_context_from_config_json(config: Path) -> None:
    make_context(config, "one", "tcp://127.0.0.1:1111")
    use_context(config, "one")

    found = resolve({"DOCKER_CONFIG": str(config)})

    assert found.host == "tcp://127.0.0.1:1111"
    assert found.url == "http://127.0.0.1:1111"
    assert found.tls is None
    assert found.describe() == "tcp://127.0.0.1:1111 (context one)"


def test_config_under_home_by_default(tmp_path: Path) -> None:
    make_context(tmp_path / ".docker", "home", "tcp://127.0.0.1:2222")
    use_context(tmp_path / ".docker", "home")

    assert resolve({"HOME": str(tmp_path)}).host == "tcp://127.0.0.1:2222"


@pytest.mark.parametrize("current", ["default", None])
def test_default_context_is_the_local_socket(config: Path, local_socket: str,
                                             current: str | None) -> None:
    if current:
        use_context(config, current)

    assert resolve({"DOCKER_CONFIG": str(config)}) == Endpoint(local_socket)
    assert resolve({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "default"}).host == (
        local_socket)


def test_context_with_tls(config: Path, pems: Path) -> None:
    make_context(config, "secure", "tcp://127.0.0.1:2376", tls=pems)
    stored = config / "contexts" / "tls" / hashlib.sha256(b"secure").hexdigest() / "docker"

    found = resolve({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "secure"})

    assert found.tls == Tls(True, str(stored / "ca.pem"), str(stored / "cert.pem"),
                            str(stored / "key.pem"))
    assert found.url == "https://127.0.0.1:2376"
    assert found.cli_flags() == ["--config", str(config), "--context", "secure"]


def test_context_skip_tls_verify(config: Path) -> None:
    make_context(config, "lax", "tcp://127.0.0.1", skip_verify=True)

    found = resolve({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "lax"})

    assert found.tls == Tls(False)
    assert found.host == "tcp://127.0.0.1:2376"  # the TLS port when none is given


def test_missing_context_says_how_to_list_them(config: Path) -> None:
    with pytest.raises(UserError, match=r"'gone' \(from DOCKER_CONTEXT\) does not exist.*"
                                        r"docker context ls"):
        resolve({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "gone"})


def test_broken_config_json(config: Path) -> None:
    (config / "config.json").write_text("{not json")

    with pytest.raises(UserError, match=r"cannot read .*config\.json"):
        resolve({"DOCKER_CONFIG": str(config)})


def test_env_tls_flags(pems: Path) -> None:
    found = resolve({"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_TLS_VERIFY": "1",
                     "DOCKER_CERT_PATH": str(pems)})

    assert found.url == "https://127.0.0.1:2376"
    assert found.cli_flags() == [
        "-H", "tcp://127.0.0.1:2376", "--tlsverify",
        "--tlscacert", str(pems / "ca.pem"), "--tlscert", str(pems / "cert.pem"),
        "--tlskey", str(pems / "key.pem"),
    ]


def test_env_tls_cert_path_defaults_to_the_config_folder(config: Path, pems: Path,
                                                         tmp_path: Path) -> None:
    for pem in ("ca.pem", "cert.pem", "key.pem"):
        shutil.copy(pems / pem, config / pem)

    found = resolve({"DOCKER_HOST": "tcp://h", "DOCKER_TLS_VERIFY": "1",
                     "DOCKER_CONFIG": str(config)})
    assert found.tls == Tls(True, str(config / "ca.pem"), str(config / "cert.pem"),
                            str(config / "key.pem"))
    assert found.host == "tcp://h:2376"

    shutil.copytree(config, tmp_path / "home" / ".docker")
    found = resolve({"DOCKER_HOST": "tcp://h", "DOCKER_TLS_VERIFY": "1",
                     "HOME": str(tmp_path / "home")})
    assert found.tls is not None and found.tls.ca == str(tmp_path / "home/.docker/ca.pem")


def test_env_tls_verify_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"DOCKER_TLS_VERIFY is set but .*ca\.pem does not exist"):
        resolve({"DOCKER_HOST": "tcp://h:1", "DOCKER_TLS_VERIFY": "1",
                 "DOCKER_CERT_PATH": str(tmp_path)})


def test_docker_tls_without_verify(pems: Path) -> None:
    found = resolve({"DOCKER_HOST": "tcp://h:1", "DOCKER_TLS": "1",
                     "DOCKER_CERT_PATH": str(pems)})

    assert found.tls is not None and not found.tls.verify
    assert found.cli_flags()[2] == "--tls"


def test_tls_variables_ignored_for_unix(pems: Path) -> None:
    found = resolve({"DOCKER_HOST": "unix:///x.sock", "DOCKER_TLS_VERIFY": "1",
                     "DOCKER_CERT_PATH": str(pems)})

    assert found == Endpoint("unix:///x.sock")


@pytest.mark.parametrize(("given", "expected"), [
    ("tcp://127.0.0.1", "tcp://127.0.0.1:2375"),
    ("tcp://example.org:1234/", "tcp://example.org:1234"),
    ("127.0.0.1:4243", "tcp://127.0.0.1:4243"),
    ("tcp://[::1]:2375", "tcp://[::1]:2375"),
    ("TCP://:2375", "tcp://localhost:2375"),
    ("unix://", "unix:///var/run/docker.sock"),
])
def test_host_forms(given: str, expected: str) -> None:
    assert resolve({"DOCKER_HOST": given}).host == expected


@pytest.mark.parametrize(("given", "message"), [
    ("ssh://me@example.org", r"cannot reach a Docker engine over ssh://.*forward its socket"),
    ("npipe:////./pipe/docker_engine", r"unsupported Docker host .*unix:///PATH or tcp://"),
    ("fd://", r"unsupported Docker host"),
    ("tcp://h:notaport", r"invalid Docker host .*tcp://HOST:PORT"),
    ("tcp://h:1/prefix", r"invalid Docker host"),
])
def test_refused_hosts(given: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        resolve({"DOCKER_HOST": given})

    assert "\n" not in str(caught.value)


def test_ssh_context_refused(config: Path) -> None:
    make_context(config, "far", "ssh://me@far")

    with pytest.raises(UserError, match="ssh://"):
        resolve({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "far"})


def test_process_environment_never_read(monkeypatch: pytest.MonkeyPatch, config: Path,
                                        local_socket: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://never@read")
    monkeypatch.setenv("DOCKER_CONTEXT", "never-read")

    assert resolve({"DOCKER_CONFIG": str(config)}) == Endpoint(local_socket)


def test_no_local_engine(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "LOCAL_SOCKETS", ("/nonexistent/docker.sock",))

    with pytest.raises(EngineUnreachable, match="start dockerd, or set DOCKER_HOST"):
        resolve({"DOCKER_CONFIG": str(config)})


# --- what the engine's users get from an endpoint ------------------------------------------


def test_docker_argv_names_the_engine_and_ignores_the_panes_variables(config: Path) -> None:
    engine = Engine(cast(aiodocker.Docker, None), "/tmp/tmux-sock", Endpoint(
        "tcp://127.0.0.1:2376", Tls(True, "/c/ca.pem", "/c/cert.pem", "/c/key.pem")))
    ctx = Context(Place("/tmp/tmux-sock", None, None), {}, engine, Tmux("/tmp/tmux-sock"))

    argv = docker_argv(ctx, "attach", "abc")

    assert argv[:1] == ["env"]
    unset = {argv[i + 1] for i, arg in enumerate(argv) if arg == "-u"}
    assert unset >= {"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"}
    docker = argv.index("docker")
    assert argv[docker:] == [
        "docker", "-H", "tcp://127.0.0.1:2376", "--tlsverify", "--tlscacert", "/c/ca.pem",
        "--tlscert", "/c/cert.pem", "--tlskey", "/c/key.pem",
        "attach", "abc",
    ]


def test_ssl_context_from_real_certificates(tmp_path: Path) -> None:
    certs = Certs.make(tmp_path)
    tls = Tls(True, str(certs.client / "ca.pem"), str(certs.client / "cert.pem"),
              str(certs.client / "key.pem"))

    context = tls.ssl_context()

    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_ssl_context_bad_files(pems: Path) -> None:
    tls = Tls(True, str(pems / "ca.pem"), str(pems / "cert.pem"), str(pems / "key.pem"))

    with pytest.raises(UserError, match=r"cannot use the TLS files in .*pems"):
        tls.ssl_context()


def test_aiodocker_never_takes_tls_from_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given its own connector, aiodocker must not look at this process's DOCKER_TLS_VERIFY."""
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)

    async def open_one() -> str:
        async with connect("/tmp/tmux-sock", {"DOCKER_HOST": "tcp://127.0.0.1:9"}) as engine:
            return engine.endpoint.url

    assert anyio.run(open_one) == "http://127.0.0.1:9"


@pytest.mark.parametrize(("status", "message", "kind", "expected"), [
    (900, "Cannot connect [ssl:default [SSL: CERTIFICATE_VERIFY_FAILED] bad]",
     EngineUnreachable, "TLS failed"),
    (900, "Cannot connect [Connection refused]", EngineUnreachable, "is dockerd running?"),
    (400, "Client sent an HTTP request to an HTTPS server.\n", EngineUnreachable,
     "speaks TLS: set DOCKER_TLS_VERIFY=1"),
])
def test_engine_failures_explained(status: int, message: str, kind: type[Exception],
                                   expected: str) -> None:
    explained = _explain(aiodocker.DockerError(status, message), _About())

    assert isinstance(explained, kind)
    assert expected in str(explained) and "\n" not in str(explained)


def test_engine_that_does_not_answer_is_unreachable() -> None:
    with pytest.raises(EngineUnreachable, match=r"no answer within 10 s"), _translated():
        raise TimeoutError


def test_pull_failure_is_one_line() -> None:
    error = aiodocker.DockerError(404, "manifest for r/x:1 not found:\nmanifest unknown")

    explained = _explain(error, _About(pulling="r/x:1"))

    assert isinstance(explained, UserError)
    assert str(explained).startswith(
        "cannot pull 'r/x:1': manifest for r/x:1 not found: manifest unknown (check the name")


def test_watcher_compares_engines_resolved(config: Path, pems: Path) -> None:
    unix = {"DOCKER_HOST": "unix:///x.sock"}
    make_context(config, "a", "unix:///x.sock")
    make_context(config, "b", "unix:///y.sock")

    assert _same_engine({**unix, "DOCKER_CERT_PATH": str(pems)}, unix)
    assert not _same_engine({"DOCKER_HOST": "unix:///y.sock"}, unix)
    assert _same_engine({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "a"},
                        {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "a"})
    assert not _same_engine({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "b"},
                            {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "a"})
    assert not _same_engine({"DOCKER_HOST": "ssh://far"}, {"DOCKER_HOST": "ssh://far"})


# --- a private engine on loopback tcp ------------------------------------------------------

SHELL_CHECK = "echo dmux-$((6*7))"


def panes(server: TmuxServer) -> dict[str, tuple[str, str]]:
    """Each tagged pane's container name -> (pane id, pane_dead)."""
    lines = server.out("list-panes", "-a", "-F", "#{pane_id} #{pane_dead} #{@dmux-name}")
    found = {}

    for line in lines.splitlines():
        pane, dead, *name = line.split()

        if name:
            found[name[0]] = (pane, dead)

    return found


def shell_answers(server: TmuxServer, pane: str) -> bool:
    """Type into the pane's shell through its attach; True when the shell answers."""
    server.out("send-keys", "-t", pane, SHELL_CHECK, "Enter")

    def answered() -> bool:
        return "dmux-42" in server.out("capture-pane", "-p", "-t", pane)

    wait_until(answered, timeout=10, what=f"the shell in {pane} to answer")
    return True


class Reached(Protocol):
    """An engine the test can ask about a container's state behind dmux's back."""

    def status(self, name: str) -> str: ...


def round_trip(server: TmuxServer, run_dmux: RunDmux, engine: Reached,
               env: dict[str, str]) -> str:
    """init, stop and start through `env`'s engine; the pane's attach must reach it."""
    main = server.out("display-message", "-p", "-t", "main", "#{pane_id}")

    made = run_dmux("init", "-i", "dmux-test/busybox:1", env=env, pane=main)
    assert made.returncode == 0, made.stderr
    name = made.stdout.strip()
    assert engine.status(name) == "running"
    assert subprocess.run(["docker", "inspect", name], capture_output=True,
                          check=False).returncode != 0  # not on the system engine
    pane, dead = panes(server)[name]
    assert dead == "0" and shell_answers(server, pane)

    listed = run_dmux("ls", "--json", env=env)
    assert listed.returncode == 0 and name in listed.stdout, listed.stderr

    stopped = run_dmux("stop", name, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert engine.status(name) == "paused" and name not in panes(server)

    started = run_dmux("start", name, env=env, pane=main)
    assert started.returncode == 0, started.stderr
    wait_until(lambda: name in panes(server), what="the new pane")
    pane, dead = panes(server)[name]
    assert engine.status(name) == "running" and dead == "0"
    assert shell_answers(server, pane)
    return name


@pytest.fixture
def plain_engine(test_image: str) -> Iterator[PrivateEngine]:
    engine = PrivateEngine.create()

    try:
        engine.start()
        engine.load(test_image)
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def tls_engine() -> Iterator[PrivateEngine]:
    """One TLS engine for the module's tests: starting dockerd is the slow part."""
    from images import ensure_test_image

    certs_dir = Path(tempfile.mkdtemp(prefix="dmxc-", dir="/tmp"))
    engine = PrivateEngine.create(Certs.make(certs_dir))

    try:
        engine.start()
        engine.load(ensure_test_image())
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(certs_dir, ignore_errors=True)


@pytest.mark.integration
def test_plain_tcp_via_docker_host(tmux_server: TmuxServer, run_dmux: RunDmux,
                                   plain_engine: PrivateEngine) -> None:
    round_trip(tmux_server, run_dmux, plain_engine, {"DOCKER_HOST": plain_engine.tcp_host})


@pytest.mark.integration
def test_tls_via_docker_host(tmux_server: TmuxServer, run_dmux: RunDmux, test_image: str,
                             tls_engine: PrivateEngine) -> None:
    assert tls_engine.certs is not None
    env = {"DOCKER_HOST": tls_engine.tcp_host, "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(tls_engine.certs.client)}

    round_trip(tmux_server, run_dmux, tls_engine, env)


@pytest.mark.integration
def test_tls_via_context(tmux_server: TmuxServer, run_dmux: RunDmux, test_image: str,
                         tls_engine: PrivateEngine, tmp_path: Path) -> None:
    assert tls_engine.certs is not None
    client = tls_engine.certs.client
    config = tmp_path / "docker-config"
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    spec = (f"host={tls_engine.tcp_host},ca={client / 'ca.pem'},cert={client / 'cert.pem'},"
            f"key={client / 'key.pem'}")

    for step in (["context", "create", "dmux-tls", "--docker", spec],
                 ["context", "use", "dmux-tls"]):
        done = subprocess.run(["docker", *step], env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr

    round_trip(tmux_server, run_dmux, tls_engine, {"DOCKER_CONFIG": str(config)})
    attach = tmux_server.out("list-panes", "-a", "-F", "#{pane_start_command}")
    assert "--context dmux-tls" in attach


@pytest.mark.integration
def test_tls_engine_without_tls_says_what_to_set(tmux_server: TmuxServer, run_dmux: RunDmux,
                                                 tls_engine: PrivateEngine) -> None:
    listed = run_dmux("ls", env={"DOCKER_HOST": tls_engine.tcp_host})

    assert listed.returncode == 2
    assert listed.stderr.count("\n") == 1
    assert "speaks TLS: set DOCKER_TLS_VERIFY=1" in listed.stderr


@pytest.mark.integration
def test_tls_with_another_ca_says_tls_failed(tmux_server: TmuxServer, run_dmux: RunDmux,
                                             tls_engine: PrivateEngine, tmp_path: Path) -> None:
    stranger = Certs.make(tmp_path)
    env = {"DOCKER_HOST": tls_engine.tcp_host, "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(stranger.client)}

    listed = run_dmux("ls", env=env)

    assert listed.returncode == 2
    assert listed.stderr.count("\n") == 1 and "TLS failed" in listed.stderr


@pytest.fixture
def podman(test_image: str) -> Iterator[PodmanEngine]:
    if not shutil.which("podman"):
        pytest.skip("podman is not installed (apt-get install podman)")

    engine = PodmanEngine.create()

    try:
        engine.start()
        engine.load(test_image)
        yield engine
    finally:
        engine.stop()


@pytest.mark.integration
def test_podman_socket(tmux_server: TmuxServer, run_dmux: RunDmux, podman: PodmanEngine,
                       tmp_path: Path) -> None:
    """Podman's Docker-compatible socket is a unix DOCKER_HOST like any other.

    Its events say ``died`` where Docker says ``die``: the watcher must pause a container
    whose pane is gone whatever the events are called.
    """
    env = {"DOCKER_HOST": podman.unix_host}
    name = round_trip(tmux_server, run_dmux, podman, env)

    log_path = tmp_path / "watch.log"

    with running_watcher(tmux_server.name, log_path, env):
        tmux_server.out("kill-pane", "-t", panes(tmux_server)[name][0])

        wait_until(lambda: podman.status(name) == "paused", timeout=20,
                   what=f"{name} paused on podman")

        podman.docker("unpause", name)  # thawed by hand: a podman event, and still no pane
        wait_until(lambda: podman.status(name) == "paused", timeout=20,
                   what=f"{name} paused again on podman")

        def woken_by_podman() -> bool:
            return any(str(e.get("reason", "")).startswith("engine-") and
                       e.get("reason") != "engine-connected"
                       for e in events(log_path) if e.get("event") == "reconciled")

        wait_until(woken_by_podman, timeout=20, what="a reconcile rung by a podman event")
