"""What the console's tests share: a world with an approver, plans made as an agent makes them, a signed-in client."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from proximo._world import DEMO_OPERATOR
from proximo.testing import World

STORAGE_DELETE = ("storage.delete", {"storage": "local-zfs"})  # HIGH: guests will not boot
FIREWALL_LOCKOUT = ("firewall.options.set", {"level": "cluster", "enable": 1, "policy_in": "DROP"})  # CRITICAL
MEDIUM_UPDATE = ("storage.update", {"storage": "nfs-backup", "prune-backups": "keep-last=3"})  # within auto-approval


@pytest.fixture(autouse=True)
def _no_failure_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong credential costs a second in production (proximo.trust._approvers); the rate-limit tests make many."""
    from proximo.trust import _approvers

    monkeypatch.setattr(_approvers, "_FAILURE_DELAY", 0.0)


def make_plan(world: World, tool: str, params: dict[str, Any]) -> Any:
    """A plan made the way an agent makes one (the firewall one from the demo's operator address, as in the demo)."""

    async def go() -> Any:
        extra = {"admin_sources": [DEMO_OPERATOR]} if tool == "firewall.options.set" else {}
        async with world.host(**extra) as host:
            return await host.plan(tool, params, world.actor)

    return anyio.run(go)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, name: str, passphrase: str, code: str = "") -> Any:
    form = client.get("/signin")
    return client.post("/signin", data={"csrf": csrf_of(form.text), "name": name, "passphrase": passphrase, "code": code,
                                        "next": "/"}, follow_redirects=False)
