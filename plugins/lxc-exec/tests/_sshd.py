"""A real OpenSSH server on a loopback port, with a ``pct`` stand-in, for the lxc-exec tests.

``/usr/sbin/sshd -D`` runs with a throwaway host key and accepts one throwaway user key, whose authorized_keys line
forces a session script (``command=``, as a restricted key on a real node may) that puts the stand-in first on the
PATH and runs the requested command with ``/bin/sh -c``, as a login shell would. The stand-in runs
``pct exec CTID -- ARG...`` in ``ROOT/CTID`` and refuses a stopped container (``ROOT/CTID/stopped``) as pve-container's
src/PVE/CLI/pct.pm does: "container 'CTID' not running!", exit status 255 (a Perl die).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"

PCT = r"""#!/bin/sh
# pct stand-in: exec and status, for containers that are directories under ROOT
root='@ROOT@'
case "$1" in
exec)
    ctid=$2; shift 2
    [ "$1" = "--" ] && shift
    [ -d "$root/$ctid" ] || { echo "Configuration file 'nodes/pve1/lxc/$ctid.conf' does not exist" >&2; exit 255; }
    [ -e "$root/$ctid/stopped" ] && { echo "container '$ctid' not running!" >&2; exit 255; }
    [ $# -gt 0 ] || { echo "missing command" >&2; exit 255; }
    cd "$root/$ctid/rootfs" && exec "$@" ;;
status)
    if [ -e "$root/$2/stopped" ]; then echo "status: stopped"; else echo "status: running"; fi ;;
*)
    echo "pct stand-in: unknown command $1" >&2; exit 255 ;;
esac
"""

SESSION = """#!/bin/sh
PATH='@BIN@':/usr/bin:/bin
export PATH
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""

# the second key: restricted as docs/packs/lxc-exec.md shows, with the pack's own forced command (no shell at all)
RESTRICTED = """#!/bin/sh
PATH='@BIN@':/usr/bin:/bin
export PATH
exec /usr/bin/perl '@SCRIPT@' "$@"
"""
EXEC_ONLY = Path(__file__).resolve().parents[1] / "contrib" / "proximo-exec-only"


def sshd_problem() -> str | None:
    """Why these tests cannot run here (None: they can)."""
    if not os.path.exists(SSHD) or not shutil.which("ssh-keygen") or not os.path.exists("/usr/bin/perl"):
        return "openssh-server is not installed (.ci/run installs it)"
    if os.geteuid() != 0:
        return "sshd runs as root in these tests (as CI does); run as root"
    return None


@dataclass
class SshNode:
    port: int
    root: Path  # ROOT/CTID/rootfs is each container's working directory
    user_key: Path  # its session runs the command with /bin/sh -c, as an unrestricted key's login shell does
    restricted_key: Path  # command="contrib/proximo-exec-only 201": no shell, only pct exec in CT 201
    known_hosts: Path  # the right host key for [127.0.0.1]:port
    host_key_line: str

    def env(self, *, restricted: bool = False, **more: str) -> dict[str, str]:
        return {"PROXIMO_SSH_KEY": str(self.restricted_key if restricted else self.user_key), "PROXIMO_SSH_KNOWN_HOSTS": str(self.known_hosts),
                "PROXIMO_SSH_PORT": str(self.port), "PROXIMO_SSH_USER": "root", **more}

    def container(self, ctid: int, *, running: bool = True) -> Path:
        rootfs = self.root / str(ctid) / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        stopped = self.root / str(ctid) / "stopped"
        if running:
            stopped.unlink(missing_ok=True)
        else:
            stopped.touch()
        return rootfs


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "proximo-test", "-f", str(path)], check=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sshd(tmp: Path) -> Iterator[SshNode]:
    tmp.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o700)
    bin_dir, root = tmp / "bin", tmp / "ct"
    bin_dir.mkdir()
    root.mkdir()
    (bin_dir / "pct").write_text(PCT.replace("@ROOT@", str(root)))
    (bin_dir / "session").write_text(SESSION.replace("@BIN@", str(bin_dir)))
    (bin_dir / "restricted").write_text(RESTRICTED.replace("@BIN@", str(bin_dir)).replace("@SCRIPT@", str(EXEC_ONLY)))
    for script in ("pct", "session", "restricted"):
        os.chmod(bin_dir / script, 0o755)
    _keygen(tmp / "host_key")
    _keygen(tmp / "user_key")
    _keygen(tmp / "restricted_key")
    pub = (tmp / "user_key.pub").read_text().strip()
    restricted = (tmp / "restricted_key.pub").read_text().strip()
    options = "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding"
    (tmp / "authorized_keys").write_text(f'command="{bin_dir}/session",{options} {pub}\n'
                                         f'command="{bin_dir}/restricted 201",{options} {restricted}\n')
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    for _ in range(5):
        port = _free_port()
        config = tmp / "sshd_config"
        config.write_text(f"""ListenAddress 127.0.0.1
Port {port}
HostKey {tmp / 'host_key'}
PidFile none
AuthorizedKeysFile {tmp / 'authorized_keys'}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowUsers root
""")
        with open(tmp / "sshd.log", "w") as log:
            proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(300):  # a readiness check, not a timed assertion
            if proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        if proc.poll() is None:
            break
    else:
        raise RuntimeError(f"sshd did not start: {(tmp / 'sshd.log').read_text()[-2000:]}")
    host_key_line = "[127.0.0.1]:%d %s" % (port, " ".join((tmp / "host_key.pub").read_text().split()[:2]))
    (tmp / "known_hosts").write_text(host_key_line + "\n")
    try:
        yield SshNode(port=port, root=root, user_key=tmp / "user_key", restricted_key=tmp / "restricted_key", known_hosts=tmp / "known_hosts",
                      host_key_line=host_key_line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
