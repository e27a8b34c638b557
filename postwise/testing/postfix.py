"""A private Postfix instance for integration tests and benchmarks: Debian's Postfix, its own
configuration, queue and log under one folder, listening only on loopback ports. Installed with
apt when it is missing (as root); callers skip with the reason :func:`ensure_postfix` gives when
that is impossible.

Beyond starting and stopping, it can route domains to given next hops (``transport``), take
extra ``main.cf`` parameters (``main``), put everything it receives on hold
(:meth:`PrivatePostfix.hold_on_arrival`), release the hold queue, take many messages fast over
SMTP (:meth:`PrivatePostfix.submit`) and wait until its queue is empty.
"""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

POSTFIX = Path("/usr/sbin/postfix")
POSTQUEUE = Path("/usr/sbin/postqueue")
POSTSUPER = Path("/usr/sbin/postsuper")
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

_MASTER_BASE = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixError(RuntimeError):
    """Postfix could not be configured, started or driven; the message carries its output."""


@dataclass(frozen=True)
class Submission:
    """One message to hand to Postfix over SMTP."""

    mail_from: str
    rcpt_to: Sequence[str]
    data: bytes


def ensure_postfix() -> str | None:
    """None when Postfix is usable here (installing it if missing), else why not."""
    if os.geteuid() != 0:
        return "the private Postfix instance needs root (its daemons drop to the postfix user)"
    if POSTFIX.exists():
        return None
    if shutil.which("apt-get") is None:
        return "Postfix is not installed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["debconf-set-selections"],
        input=b"postfix postfix/main_mailer_type select No configuration\n",
        check=False,
    )
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postfix"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
        if result.returncode != 0:
            return f"installing Postfix failed: {result.stderr.decode(errors='replace')[-500:]}"
    return None if POSTFIX.exists() else "Postfix did not install"


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on ``host:port``; TimeoutError if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


class PrivatePostfix:
    """One Postfix instance. ``services`` maps a loopback port to the ``-o name=value``
    overrides of the smtpd listening there; ``relayhost`` is where it sends all mail not routed
    by ``transport`` (domain -> next hop such as ``smtp:[127.0.0.2]:2525``); ``main`` adds or
    replaces ``main.cf`` parameters (applied last)."""

    def __init__(
        self,
        services: dict[int, dict[str, str]],
        relayhost: str = "",
        *,
        main: Mapping[str, str] | None = None,
        transport: Mapping[str, str] | None = None,
    ) -> None:
        # Postfix's daemons run as the postfix user: the folder must be reachable by it,
        # which pytest's private tmp_path is not.
        self.base = Path(tempfile.mkdtemp(prefix="postwise-postfix-"))
        self.base.chmod(0o755)
        self.config = self.base / "etc"
        self.config.mkdir()
        self.services = services
        self.relayhost = relayhost
        self.main: dict[str, str] = dict(main or {})
        if transport:
            self.main.setdefault("transport_maps", self.texthash("transport", transport))

    @staticmethod
    def hold_on_arrival() -> dict[str, str]:
        """smtpd overrides (for ``services``) that put every message it accepts on hold."""
        return {"smtpd_end_of_data_restrictions": "check_client_access,static:HOLD"}

    def texthash(self, name: str, entries: Mapping[str, str]) -> str:
        """Write a lookup table into the configuration folder; returns its ``texthash:`` name
        for a ``main.cf`` parameter. Read at start (texthash tables need no postmap)."""
        path = self.config / name
        path.write_text("".join(f"{key} {value}\n" for key, value in entries.items()))
        return f"texthash:{path}"

    def _write_config(self) -> None:
        for sub in ("etc", "queue", "data"):
            (self.base / sub).mkdir(exist_ok=True)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.base / "queue"),
            "data_directory": str(self.base / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mta.postwise.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relayhost": self.relayhost,
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "maillog_file": str(self.base / "maillog"),
            "maillog_file_prefixes": str(self.base),
            "alternate_config_directories": str(self.config),
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtpd_authorized_xforward_hosts": "127.0.0.0/8",
            "milter_default_action": "tempfail",
            "milter_protocol": "6",
            "notify_classes": "",
            "smtp_connection_cache_on_demand": "no",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        main.update(self.main)
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        lines = [_MASTER_BASE]
        for port, overrides in self.services.items():
            lines.append(f"127.0.0.1:{port} inet n - n - - smtpd\n")
            lines += [f"  -o {name}={value}\n" for name, value in overrides.items()]
        (self.config / "master.cf").write_text("".join(lines))

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(POSTFIX, *args)

    def _run(
        self, program: Path, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(program), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> PrivatePostfix:
        """Write the configuration, start the master and wait for every smtpd port.
        Raises PostfixError with Postfix's output when it will not start."""
        self._write_config()
        created = self._postfix("post-install", "create-missing")
        if created.returncode != 0:
            raise PostfixError(f"postfix post-install failed: {created.stderr}")
        shutil.chown(self.base / "data", user="postfix")
        started = self._postfix("start")
        if started.returncode != 0:
            raise PostfixError(f"postfix start failed: {started.stderr}\n{self.log()}")
        for port in self.services:
            wait_for_port(port)
        return self

    def stop(self) -> None:
        """Stop the master (and so every daemon) and delete the folder."""
        pid_file = self.base / "queue" / "pid" / "master.pid"
        try:
            master = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            master = 0
        self._postfix("stop")
        deadline = time.monotonic() + 10
        while master and time.monotonic() < deadline:
            try:
                os.kill(master, 0)  # the master pid file outlives the master: ask the process
            except ProcessLookupError:
                break
            time.sleep(0.05)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PrivatePostfix:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log(self) -> str:
        path = self.base / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no maillog)"

    def queue(self) -> list[dict[str, object]]:
        """The queue as ``postqueue -j`` reports it: one dict per message (``queue_name`` is
        ``hold`` for held mail)."""
        result = self._run(POSTQUEUE, "-j")
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def queue_counts(self) -> dict[str, int]:
        """Files in each queue (``maildrop``, ``incoming``, ``active``, ``deferred``, ``hold``),
        counted on disk: cheap enough to poll with tens of thousands of messages queued."""
        counts = {}
        for name in QUEUES:
            folder = self.base / "queue" / name
            counts[name] = sum(len(files) for _, _, files in os.walk(folder))
        return counts

    def flush(self) -> None:
        """Ask for immediate delivery of the deferred queue (``postqueue -f``)."""
        self._run(POSTQUEUE, "-f", timeout=30)

    def hold_all(self) -> None:
        """Put every queued message on hold (``postsuper -h ALL``)."""
        self._postsuper("-h", "ALL")

    def release_all(self) -> None:
        """Release every held message and ask for its delivery now (``postsuper -H ALL``,
        then ``postqueue -f``)."""
        self._postsuper("-H", "ALL")
        self.flush()

    def _postsuper(self, *args: str) -> None:
        result = self._run(POSTSUPER, *args, timeout=600)
        if result.returncode != 0:
            raise PostfixError(f"postsuper {' '.join(args)} failed: {result.stderr}")

    def wait_until_empty(self, timeout: float = 60.0, include_hold: bool = False) -> None:
        """Block until no message is queued (held ones count only with ``include_hold``).
        Raises TimeoutError with the queue counts when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.queue_counts()
            if not include_hold:
                counts.pop("hold")
            if not any(counts.values()):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Postfix queue not empty after {timeout:.0f} s: {counts}")
            time.sleep(0.1)

    def submit(
        self,
        port: int,
        messages: Sequence[Submission],
        *,
        connections: int = 8,
        per_connection: int = 100,
        host: str = "127.0.0.1",
    ) -> int:
        """Send ``messages`` to the smtpd on ``port`` over ``connections`` parallel SMTP
        sessions of up to ``per_connection`` messages each; returns how many were accepted.
        Raises PostfixError naming the first message Postfix refused."""
        batches = [
            messages[start : start + per_connection]
            for start in range(0, len(messages), per_connection)
        ]
        accepted = 0
        lock = threading.Lock()

        def send(batch: Sequence[Submission]) -> None:
            nonlocal accepted
            with smtplib.SMTP(
                host, port, local_hostname="submit.postwise.test", timeout=120
            ) as client:
                for message in batch:
                    try:
                        refused = client.sendmail(
                            message.mail_from, list(message.rcpt_to), message.data
                        )
                    except smtplib.SMTPException as error:
                        raise PostfixError(
                            f"Postfix refused the message from {message.mail_from} to "
                            f"{', '.join(message.rcpt_to)}: {error}"
                        ) from error
                    if refused:
                        raise PostfixError(f"Postfix refused recipients {refused}")
                    with lock:
                        accepted += 1

        with ThreadPoolExecutor(max_workers=max(1, connections)) as pool:
            for done in [pool.submit(send, batch) for batch in batches]:
                done.result()
        return accepted
