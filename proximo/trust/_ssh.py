"""The executor's ssh: ``pct exec`` in a container on its node, for an ``SshExec`` step (the lxc-exec pack).

Only ``Executor.run`` calls this, as it alone sends API writes: packs describe ``SshExec`` steps and never connect.
Fail closed at every turn: exec must be on (``PROXIMO_ENABLE_EXEC=1``) and the CTID allow-listed
(``PROXIMO_EXEC_ALLOW``) here too, not only when the plan was made; the node's host key must be in the known_hosts
file (an unknown or changed key is refused, never learnt); no ssh agent and no ssh config file is used, only
``PROXIMO_SSH_KEY``.

The remote command line is ``timeout -k 5 T pct exec CTID -- ARG...`` with every argument quoted for the node's
POSIX shell (``shlex.quote``: one single-quoted word each), so no argument can end the command or start another.
``timeout`` ends a hung command on the node itself; the client also stops waiting a few seconds later, and stops
reading (closing the channel) once stdout and stderr together pass ``max_output`` bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import shlex
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._settings import Settings
    from .._types import SshExec

KILL_AFTER = 5  # seconds `timeout` waits after TERM before KILL, on the node
GRACE = 10  # seconds the client waits beyond the step's timeout before it cuts the connection itself
CONNECT_TIMEOUT = 15


def remote_command(step: SshExec) -> str:
    """The command line the node's shell runs: each argument one quoted word (see the module's docstring)."""
    if not step.argv:
        raise ValueError("an exec step needs a command")
    seconds = max(1, math.ceil(step.timeout))
    words = ["timeout", "-k", str(KILL_AFTER), str(seconds), "pct", "exec", str(int(step.ctid)), "--", *step.argv]
    return " ".join(shlex.quote(w) for w in words)


def exec_refusal(settings: Settings, ctid: int) -> str | None:
    """Why exec is refused in this container (None: it is not): the same rule at plan and at apply."""
    if not settings.exec_enabled:
        return "exec in containers is off (a person turns it on with PROXIMO_ENABLE_EXEC=1; docs/packs/lxc-exec.md)"
    if not settings.exec_allows(ctid):
        return f"CT {ctid} is not in PROXIMO_EXEC_ALLOW (the CTIDs a command may run in; empty: none)"
    return None


class SshRunner:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def run(self, step: SshExec) -> tuple[bool, dict[str, Any], dict[str, str], str]:
        """Run the step: (ok, what the ledger keeps, the output itself, error line)."""
        import asyncssh

        s = self._settings
        record: dict[str, Any] = {"argv": list(step.argv), "node": step.node, "address": step.address, "ctid": step.ctid}
        if why := exec_refusal(s, step.ctid):
            return False, record, {}, why
        if not step.address:
            return False, record, {}, f"no address for node {step.node}"
        known = s.ssh_known_hosts
        if known is None or not known.is_file():
            return False, record, {}, (f"no known_hosts file ({known}): host keys cannot be checked, so nothing is sent "
                                       "(PROXIMO_SSH_KNOWN_HOSTS; docs/packs/lxc-exec.md)")
        if s.ssh_key is None or not s.ssh_key.is_file():
            return False, record, {}, f"no ssh key ({s.ssh_key}): set PROXIMO_SSH_KEY (docs/packs/lxc-exec.md)"
        command = remote_command(step)
        started = time.monotonic()
        try:
            conn = await asyncio.wait_for(asyncssh.connect(
                step.address, port=s.ssh_port, username=s.ssh_user, client_keys=[str(s.ssh_key)],
                known_hosts=str(known), config=None, agent_path=None, preferred_auth="publickey",
                passphrase=None), timeout=CONNECT_TIMEOUT)
        except asyncssh.HostKeyNotVerifiable as exc:
            return False, record, {}, (f"the host key of {step.address} (node {step.node}) is unknown or changed: refused, "
                                       f"nothing was run ({exc.reason}; known_hosts: {known})")
        except (OSError, asyncssh.Error, asyncssh.KeyImportError, TimeoutError) as exc:
            return False, record, {}, f"ssh to {step.address} (node {step.node}) failed: {exc or type(exc).__name__}"
        out, err = bytearray(), bytearray()
        counts = {"stdout": 0, "stderr": 0}
        truncated = timed_out = False
        exit_status: int | None = None
        try:
            async with conn:
                process = await conn.create_process(command, encoding=None, stdin=asyncssh.DEVNULL)

                async def pump(stream: Any, into: bytearray, name: str) -> None:
                    nonlocal truncated
                    while chunk := await stream.read(65536):
                        room = step.max_output - len(out) - len(err)
                        counts[name] += min(len(chunk), max(room, 0))
                        into += chunk[:max(room, 0)]
                        if len(chunk) > room:
                            truncated = True
                            process.close()
                            return

                try:
                    await asyncio.wait_for(asyncio.gather(pump(process.stdout, out, "stdout"), pump(process.stderr, err, "stderr")),
                                           timeout=step.timeout + GRACE)
                    if not truncated:
                        await asyncio.wait_for(process.wait_closed(), timeout=GRACE)
                        exit_status = process.exit_status
                except TimeoutError:
                    timed_out = not truncated
                    process.close()
        except (OSError, asyncssh.Error) as exc:  # the channel or the connection failed under the command
            record |= {"exit_status": None, "stdout_bytes": counts["stdout"], "stderr_bytes": counts["stderr"],
                       "stdout_sha256": hashlib.sha256(out).hexdigest(), "stderr_sha256": hashlib.sha256(err).hexdigest()}
            return False, record, {"stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace")}, (
                f"ssh to {step.address} (node {step.node}) failed during the command: {exc or type(exc).__name__}")
        seconds = round(time.monotonic() - started, 3)
        if exit_status == 124 and seconds >= step.timeout:  # coreutils timeout's own status
            timed_out = True
        record |= {"exit_status": exit_status, "stdout_bytes": counts["stdout"], "stderr_bytes": counts["stderr"],
                   "stdout_sha256": hashlib.sha256(out).hexdigest(), "stderr_sha256": hashlib.sha256(err).hexdigest(),
                   "truncated": truncated, "timed_out": timed_out, "seconds": seconds,
                   "limits": {"timeout": step.timeout, "max_output": step.max_output}}
        output = {"stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace")}
        if truncated:
            return False, record, output, f"cut: the output passed the limit of {step.max_output} bytes"
        if timed_out:
            return False, record, output, f"cut: the command ran past its timeout of {step.timeout:g} s"
        if exit_status != 0:
            last = output["stderr"].strip().splitlines()[-1:] or [""]
            return False, record, output, f"exit status {exit_status}" + (f": {last[0][:300]}" if last[0] else "")
        return True, record, output, ""
