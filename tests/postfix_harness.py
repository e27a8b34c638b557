"""A private Postfix instance for integration tests: Debian's Postfix, its own configuration,
queue and log under one folder, listening only on loopback ports. Installed with apt when it
is missing (as root); tests skip with the reason when that is impossible.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = Path("/usr/sbin/postfix")

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


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


class PrivatePostfix:
    """One Postfix instance. ``services`` maps a loopback port to the ``-o name=value``
    overrides of the smtpd listening there; ``relayhost`` is where it sends all mail."""

    def __init__(self, services: dict[int, dict[str, str]], relayhost: str) -> None:
        # Postfix's daemons run as the postfix user: the folder must be reachable by it,
        # which pytest's private tmp_path is not.
        self.base = Path(tempfile.mkdtemp(prefix="postwise-postfix-"))
        self.base.chmod(0o755)
        self.config = self.base / "etc"
        self.services = services
        self.relayhost = relayhost

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
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        lines = [_MASTER_BASE]
        for port, overrides in self.services.items():
            lines.append(f"127.0.0.1:{port} inet n - n - - smtpd\n")
            lines += [f"  -o {name}={value}\n" for name, value in overrides.items()]
        (self.config / "master.cf").write_text("".join(lines))

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(POSTFIX), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> PrivatePostfix:
        self._write_config()
        created = self._postfix("post-install", "create-missing")
        if created.returncode != 0:
            raise RuntimeError(f"postfix post-install failed: {created.stderr}")
        shutil.chown(self.base / "data", user="postfix")
        started = self._postfix("start")
        if started.returncode != 0:
            raise RuntimeError(f"postfix start failed: {started.stderr}\n{self.log()}")
        for port in self.services:
            wait_for_port(port)
        return self

    def stop(self) -> None:
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

    def log(self) -> str:
        path = self.base / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no maillog)"

    def queue(self) -> list[dict[str, object]]:
        """The queue as ``postqueue -j`` reports it: one dict per message (``queue_name`` is
        ``hold`` for held mail)."""
        result = subprocess.run(
            ["/usr/sbin/postqueue", "-c", str(self.config), "-j"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def flush(self) -> None:
        subprocess.run(
            ["/usr/sbin/postqueue", "-c", str(self.config), "-f"],
            capture_output=True,
            timeout=30,
            check=False,
        )
