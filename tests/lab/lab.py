"""A disposable lab of real components on loopback (SPEC §10).

Every lab gets its own folder, sockets, data roots and ports, so nothing left by an earlier run
or by hand leaks into it. Processes are ended by PID in :meth:`Lab.stop`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = {
    "dockerd": "/usr/sbin/dockerd",
    "docker-registry": "/usr/bin/docker-registry",
    "sshd": "/usr/sbin/sshd",
    "ssh-keygen": "/usr/bin/ssh-keygen",
    "docker-compose": "/usr/bin/docker-compose",
    "busybox": "/bin/busybox",
}
INSTALL_HINT = (
    "install the lab with: apt-get install -y openssh-server docker.io docker-registry "
    "docker-compose busybox-static (as root), or run ./scripts/test"
)


class LabUnavailable(RuntimeError):
    """A lab component is missing or failed to start; the message says how to fix it.

    ``component`` names the part (``dockerd alpha``, ``sshd beta``, ``docker-registry``...);
    ``missing`` tells "not installed" from "installed but failed", so a broken dockerd is not
    taken for a missing package.
    """

    def __init__(self, message: str, component: str = "lab", missing: bool = False) -> None:
        super().__init__(message)
        self.component = component
        self.missing = missing

    def skip_reason(self) -> str:
        """The one line a test skip (or a CI failure) shows."""
        if self.missing:
            return f"lab not installed ({self.component}): {self}"
        return f"lab component {self.component} failed to start: {self}"


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, timeout: float, what: str) -> None:
    """Poll ``predicate`` until true or raise :class:`LabUnavailable`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise LabUnavailable(f"{what} did not come up within {timeout:g}s", component=what)


def check_components() -> None:
    """Raise :class:`LabUnavailable` when a component is not installed or we are not root."""
    missing = [name for name, path in REQUIRED.items() if not os.path.exists(path)]
    if missing:
        raise LabUnavailable(
            f"missing lab components: {', '.join(missing)}; {INSTALL_HINT}",
            component=", ".join(missing),
            missing=True,
        )
    if os.geteuid() != 0:
        raise LabUnavailable(
            "the lab starts dockerd and sshd and must run as root", component="root", missing=True
        )


@dataclass
class Engine:
    """One isolated dockerd."""

    name: str
    root: Path
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.socket}

    def docker(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        """Run the docker CLI against this engine; returns stdout."""
        proc = subprocess.run(
            ["docker", *args],
            input=input,
            capture_output=True,
            env=self.env(),
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise LabUnavailable(
                f"docker {' '.join(args[:3])} on {self.name} failed: {proc.stderr.decode()[-400:]}",
                component=f"dockerd {self.name} (docker {args[0] if args else ''})",
            )
        return proc.stdout.decode()


@dataclass
class LabHost:
    """A lab host reached over SSH: an sshd in front of an engine."""

    alias: str
    address: str
    port: int
    engine: Engine | None
    proc: subprocess.Popen[bytes] | None
    log: Path
    host_key_pub: str = ""

    def connections(self) -> int:
        """How many SSH logins this host's sshd has accepted so far."""
        return self._count("Accepted publickey")

    def commands(self) -> int:
        """How many remote commands this host's sshd has started so far."""
        return self._count("Starting session: command")

    def _count(self, needle: str) -> int:
        try:
            return self.log.read_text(errors="replace").count(needle)
        except OSError:
            return 0


@dataclass
class Lab:
    """Registry, engines, sshd hosts, an ssh config and known_hosts, under one folder."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pctl-lab-")))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    engines: dict[str, Engine] = field(default_factory=dict)
    hosts: dict[str, LabHost] = field(default_factory=dict)
    registry_port: int = 0
    images: dict[str, str] = field(default_factory=dict)
    netns: list[str] = field(default_factory=list)
    _silent: list[socket.socket] = field(default_factory=list)

    # --- paths -------------------------------------------------------------------------
    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh" / "config"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    @property
    def client_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    # --- lifecycle ---------------------------------------------------------------------
    def stop(self) -> None:
        """End every process this lab started, by PID, and remove its folder."""
        for sock in self._silent:
            with contextlib.suppress(OSError):
                sock.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for name in self.netns:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        for engine in self.engines.values():
            # vfs layers and container mounts: unmount leftovers before removing the folder.
            subprocess.run(["umount", "-R", str(engine.root / "exec")], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _spawn(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> subprocess.Popen[bytes]:
        fh = open(log, "wb")  # noqa: SIM115 - the child owns it for its lifetime
        proc = subprocess.Popen(
            args,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        fh.close()
        self.procs.append(proc)
        return proc

    # --- registry ----------------------------------------------------------------------
    def start_registry(self) -> str:
        """A docker-registry on a free loopback port, no auth; returns ``127.0.0.1:PORT``."""
        self.registry_port = free_port()
        folder = self.root / "registry"
        folder.mkdir(parents=True)
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{self.registry_port}\n"
        )
        proc = self._spawn([REQUIRED["docker-registry"], "serve", str(config)], folder / "log")
        wait_for(
            lambda: proc.poll() is None and _port_open("127.0.0.1", self.registry_port),
            30,
            "docker-registry",
        )
        return self.registry

    # --- engines -----------------------------------------------------------------------
    def start_engine(self, name: str) -> Engine:
        """An isolated dockerd (vfs, no bridge, no iptables) with its own socket and roots."""
        root = self.root / "engines" / name
        (root / "exec").mkdir(parents=True)
        args = [
            REQUIRED["dockerd"],
            "--storage-driver=vfs",
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'docker.pid'}",
            f"-H=unix://{root}/docker.sock",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--shutdown-timeout=1",
        ]
        proc = self._spawn(args, root / "dockerd.log")
        engine = Engine(name, root, proc)

        def ready() -> bool:
            if proc.poll() is not None:
                log = (root / "dockerd.log").read_text(errors="replace")[-600:]
                raise LabUnavailable(f"dockerd {name} exited: {log}", component=f"dockerd {name}")
            return (
                subprocess.run(
                    ["docker", "version"], env=engine.env(), capture_output=True
                ).returncode
                == 0
            )

        wait_for(ready, 60, f"dockerd {name}")
        self.engines[name] = engine
        return engine

    def build_image(self, engine: Engine, ref: str, content: str, push: bool = True) -> str:
        """Import a busybox image whose ``/version`` holds ``content``; push it when asked.

        Returns the image's repo digest (``sha256:…``) when pushed, else its image ID.
        """
        tar = _busybox_rootfs(content)
        engine.docker("import", "-c", 'CMD ["/bin/sleep","infinity"]', "-", ref, input=tar)
        if not push:
            return engine.docker("image", "inspect", "--format", "{{.Id}}", ref).strip()
        engine.docker("push", ref)
        digests = json.loads(
            engine.docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
        )
        repo = ref.rsplit(":", 1)[0]
        digest = next(d for d in digests if d.startswith(repo + "@")).split("@", 1)[1]
        self.images[ref] = digest
        return str(digest)

    def pull(self, engine: Engine, ref: str) -> None:
        """Pull ``ref`` from the lab registry onto ``engine`` (fills RepoDigests)."""
        engine.docker("pull", ref)

    def run_container(
        self,
        engine: Engine,
        name: str,
        image: str,
        *,
        labels: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        running: bool = True,
        entrypoint: str | None = None,
        command: tuple[str, ...] = (),
        volumes: tuple[str, ...] = (),
        paused: bool = False,
    ) -> str:
        """``docker run -d --network none`` (or ``create`` when not running; ``docker pause``
        after it when ``paused``); returns the ID."""
        args = ["run", "-d"] if running else ["create"]
        args += ["--network", "none", "--name", name]
        for key, value in (labels or {}).items():
            args += ["--label", f"{key}={value}"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        for volume in volumes:
            args += ["--volume", volume]
        if entrypoint is not None:
            args += ["--entrypoint", entrypoint]
        container_id = engine.docker(*args, image, *command).strip()
        if paused:
            engine.docker("pause", name)
        return container_id

    def compose(
        self,
        engine: Engine,
        project_dir: Path,
        project: str,
        *args: str,
        env: dict[str, str] | None = None,
    ) -> str:
        """Run docker-compose v1 against ``engine`` in ``project_dir`` with ``-p project``;
        ``env`` overrides the stack's ``.env`` as the shell does for compose."""
        proc = subprocess.run(
            [REQUIRED["docker-compose"], "-p", project, *args],
            cwd=project_dir,
            capture_output=True,
            env={**engine.env(), **(env or {})},
            timeout=180,
        )
        if proc.returncode != 0:
            raise LabUnavailable(
                f"docker-compose {' '.join(args)} failed: {proc.stderr.decode()[-600:]}",
                component="docker-compose",
            )
        return proc.stdout.decode()

    # --- ssh ---------------------------------------------------------------------------
    def _ensure_client_key(self) -> None:
        if self.client_key.exists():
            return
        self.client_key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(
            [REQUIRED["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)],
            check=True,
            capture_output=True,
        )
        self.known_hosts.touch()
        self.ssh_config.touch()

    def start_sshd(
        self,
        alias: str,
        engine: Engine | None,
        address: str = "127.0.0.1",
        extra: str = "",
        known: bool = True,
        netns: str | None = None,
        port: int | None = None,
        authorized_keys: Path | None = None,
    ) -> LabHost:
        """An sshd on ``address`` whose sessions reach ``engine`` through DOCKER_HOST;
        inside network namespace ``netns`` when given (unreachable from outside it);
        ``authorized_keys`` replaces the lab client key as the accepted keys."""
        self._ensure_client_key()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        folder = self.root / "sshd" / alias
        folder.mkdir(parents=True)
        host_key = folder / "ssh_host_ed25519_key"
        subprocess.run(
            [REQUIRED["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
            check=True,
            capture_output=True,
        )
        port = port or free_port(address)
        # The session's HOME is the lab's: this machine's root runs pyenv from ~/.bashrc, which
        # bash sources for every ssh command and which costs ~200 ms a session. A real server's
        # shell start-up is not what the tests or the benchmarks measure.
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        docker_host = f" DOCKER_HOST={engine.socket}" if engine else ""
        setenv = f"SetEnv HOME={home}{docker_host}\n"
        authorized = authorized_keys or f"{self.client_key}.pub"
        (folder / "sshd_config").write_text(
            f"Port {port}\nListenAddress {address}\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {authorized}\nPidFile {folder / 'sshd.pid'}\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "LogLevel VERBOSE\nMaxStartups 200:30:400\n"
            f"{setenv}{extra}"
        )
        log = folder / "sshd.log"
        prefix = ["ip", "netns", "exec", netns] if netns else []
        proc = self._spawn(
            [*prefix, REQUIRED["sshd"], "-D", "-e", "-f", str(folder / "sshd_config")], log
        )

        def listening() -> bool:
            if proc.poll() is not None:
                raise LabUnavailable(
                    f"sshd {alias} exited: {log.read_text()[-400:]}", component=f"sshd {alias}"
                )
            return "Server listening on" in log.read_text(errors="replace")

        wait_for(listening, 20, f"sshd {alias}")
        pub = (folder / "ssh_host_ed25519_key.pub").read_text().split()
        host = LabHost(alias, address, port, engine, proc, log, host_key_pub=" ".join(pub[:2]))
        self.hosts[alias] = host
        self.add_alias(alias, address, port)
        if known:
            self.trust(host)
        return host

    def create_netns(self) -> str:
        """A new network namespace with only its own loopback, removed in :meth:`stop`."""
        name = f"pctl-{os.getpid()}-{len(self.netns)}-{int(time.time() * 1000) % 100000}"
        for args in (
            ["ip", "netns", "add", name],
            ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ):
            proc = subprocess.run(args, capture_output=True)
            if proc.returncode != 0:
                raise LabUnavailable(
                    f"cannot create a network namespace: {proc.stderr!r}", component="ip netns"
                )
        self.netns.append(name)
        return name

    def start_relay(
        self,
        maps: list[tuple[str, str]],
        delay_ms: float = 0.0,
        netns: str | None = None,
        name: str = "relay",
    ) -> subprocess.Popen[bytes]:
        """A :mod:`tests.lab.relay` process. A listen address starting with ``127.`` in a relay
        run inside ``netns`` is bound here first and handed over, so it accepts from outside."""
        fds: list[int] = []
        args = [sys.executable, "-m", "tests.lab.relay", "--delay-ms", str(delay_ms)]
        for listen, target in maps:
            if netns:
                host, port = listen.rsplit(":", 1)
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, int(port)))
                sock.listen(256)
                self._silent.append(sock)  # closed in stop()
                fds.append(sock.fileno())
                listen = f"fd:{sock.fileno()}"
            args += ["--map", f"{listen}={target}"]
        prefix = ["ip", "netns", "exec", netns] if netns else []
        folder = self.root / "relays"
        folder.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        proc = self._spawn(
            [*prefix, *args], folder / f"{name}-{len(self.procs)}.log", env=env, pass_fds=tuple(fds)
        )
        if not netns:
            for listen, _ in maps:
                host, port = listen.rsplit(":", 1)
                wait_for(
                    lambda h=host, p=int(port): proc.poll() is None and _port_open(h, p),
                    20,
                    "relay",
                )
        return proc

    def trust(self, host: LabHost) -> None:
        """Add ``host``'s key to the lab known_hosts."""
        with open(self.known_hosts, "a") as fh:
            fh.write(f"[{host.address}]:{host.port} {host.host_key_pub}\n")

    def add_alias(self, alias: str, address: str, port: int, extra: str = "") -> None:
        """Append a ``Host`` block for ``alias`` to the lab ssh config."""
        self._ensure_client_key()
        with open(self.ssh_config, "a") as fh:
            fh.write(
                f"Host {alias}\n  HostName {address}\n  Port {port}\n  User root\n"
                f"  IdentityFile {self.client_key}\n  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {self.known_hosts}\n  GlobalKnownHostsFile none\n"
                f"{extra}"
            )

    def silent_listener(self, address: str = "127.0.0.1") -> int:
        """A port that accepts TCP connections and never says anything."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, 0))
        sock.listen(64)
        self._silent.append(sock)
        held: list[socket.socket] = []

        def accept() -> None:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                held.append(conn)

        threading.Thread(target=accept, daemon=True).start()
        return int(sock.getsockname()[1])


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _busybox_rootfs(content: str) -> bytes:
    """A tar of a minimal root filesystem: busybox, sleep and sh, and a ``/version`` file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in ("bin", "tmp"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        tar.add(REQUIRED["busybox"], arcname="bin/busybox")
        for applet in ("sleep", "sh"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        data = content.encode()
        info = tarfile.TarInfo("version")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
