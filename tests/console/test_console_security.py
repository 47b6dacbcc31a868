"""The console's security rules and decisions, through Starlette's TestClient (fast; the browser tests are apart).

Sign-in with the approver credential, sessions, CSRF on every form, the sign-in rate limit, no bearer token, the
Host header, and that a decision here is the same ledger record as anywhere, naming the approver and ``console``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import anyio
import pytest
from starlette.testclient import TestClient

from _console_support import FIREWALL_LOCKOUT, MEDIUM_UPDATE, STORAGE_DELETE, csrf_of, make_plan, sign_in
from proximo.console import build_console, check_bind
from proximo.console._app import _local_path
from proximo.console._auth import FAILURE_WINDOW, MAX_FAILURES
from proximo.errors import BadInput
from proximo.testing import World
from proximo.trust._approvers import ApproverStore, totp_code

MCP_TOKEN = "the-agents-mcp-http-token-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def client_for(world: World, *, clock: Clock | None = None, tls: bool = False) -> TestClient:
    app = build_console(world.host, tls=tls, **({"clock": clock} if clock else {}))
    return TestClient(app, base_url="https://127.0.0.1" if tls else "http://127.0.0.1")


def records(world: World, plan_id: str, kind: str) -> list:
    with world.ledger() as book:
        return book.find(plan_id=plan_id, kind=kind)  # type: ignore[arg-type]


def test_sign_in_opens_a_session_in_a_strict_http_only_cookie(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    with client_for(world) as client:
        assert client.get("/", follow_redirects=False).headers["location"] == "/signin?next=%2F"
        answer = sign_in(client, person.name, person.passphrase)
        assert answer.status_code == 303 and answer.headers["location"] == "/signin?kept=check&next=%2F"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("proximo-console="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http on loopback: see docs/console.md
        page = client.get(answer.headers["location"])  # the cookie was kept: on to the page asked for
        client.cookies.clear()
        dropped = client.get(answer.headers["location"])  # a browser that drops the cookie is told so
    assert page.status_code == 200 and f"Signed in as <strong>{person.name}</strong>" in page.text
    assert person.passphrase not in page.text
    assert "did not keep the session cookie" in dropped.text


def test_over_tls_the_cookie_is_secure_and_host_only(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    with client_for(world, tls=True) as client:
        answer = sign_in(client, person.name, person.passphrase)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("__Host-proximo-console="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Domain" not in cookie


def test_every_page_needs_a_session(tmp_path: Path) -> None:
    world = World(tmp_path)
    plan = make_plan(world, *STORAGE_DELETE)
    with client_for(world) as client:
        assert client.get(f"/plan/{plan.plan_id}", follow_redirects=False).status_code == 303
        assert client.get("/ledger", follow_redirects=False).status_code == 303
        assert client.get("/waiting").status_code == 401 and client.get("/events").status_code == 401
        posted = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": "x"}, follow_redirects=False)
        client.cookies.set("proximo-console", "made-up-session-id")
        with_cookie = client.get("/", follow_redirects=False)
    assert posted.status_code == 403 and with_cookie.status_code == 303
    assert not records(world, plan.plan_id, "approve")


def test_a_wrong_passphrase_is_refused_and_sign_in_is_rate_limited(tmp_path: Path) -> None:
    world, clock = World(tmp_path), Clock()
    person = world.person
    with client_for(world, clock=clock) as client:
        wrong = [sign_in(client, person.name, person.passphrase + "x").status_code for _ in range(MAX_FAILURES)]
        limited = sign_in(client, person.name, person.passphrase)  # even the right one waits now
        clock.now += FAILURE_WINDOW + 1
        after = sign_in(client, person.name, person.passphrase)
    assert wrong == [401] * MAX_FAILURES
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text and int(limited.headers["retry-after"]) > 0
    assert after.status_code == 303


def test_an_unknown_name_counts_against_the_address(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    with client_for(world) as client:
        for n in range(MAX_FAILURES):
            assert sign_in(client, f"nobody{n}", "guess-guess-guess").status_code == 401
        assert sign_in(client, person.name, person.passphrase).status_code == 429


def test_totp_is_asked_where_the_approver_has_one(tmp_path: Path) -> None:
    world = World(tmp_path)
    approver = ApproverStore(tmp_path).add("bob", "a-long-passphrase-for-bob", with_totp=True)
    code = totp_code(approver.totp, int(time.time()) // 30)
    with client_for(world) as client:
        without = sign_in(client, "bob", "a-long-passphrase-for-bob")
        right = sign_in(client, "bob", "a-long-passphrase-for-bob", code)
        again = TestClient(client.app, base_url="http://127.0.0.1")
        replayed = sign_in(again, "bob", "a-long-passphrase-for-bob", code)  # a code works once
    assert without.status_code == 401 and right.status_code == 303 and replayed.status_code == 401


def test_a_post_without_the_csrf_token_is_refused(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    plan = make_plan(world, *STORAGE_DELETE)
    with client_for(world) as client:
        sign_in(client, person.name, person.passphrase)
        token = csrf_of(client.get(f"/plan/{plan.plan_id}").text)
        missing = client.post(f"/plan/{plan.plan_id}/approve", data={"target": ""}, follow_redirects=False)
        wrong = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token[:-2] + "xx"}, follow_redirects=False)
        other_site = client.post(f"/plan/{plan.plan_id}/deny", data={"csrf": token, "reason": "x"},
                                 headers={"origin": "http://evil.example"}, follow_redirects=False)
        as_json = client.post(f"/plan/{plan.plan_id}/approve", json={"csrf": token}, follow_redirects=False)
        signin_without = client.post("/signin", data={"name": person.name, "passphrase": person.passphrase},
                                     follow_redirects=False)
    assert [r.status_code for r in (missing, wrong, other_site)] == [403, 403, 403] and as_json.status_code == 400
    assert "CSRF" in missing.text and signin_without.status_code == 403
    with world.ledger() as book:
        assert [r.kind for r in book.find(plan_id=plan.plan_id)] == ["plan"]


def test_the_agents_bearer_token_opens_nothing(tmp_path: Path) -> None:
    world = World(tmp_path, env={"PROXIMO_HTTP_TOKEN": MCP_TOKEN})
    person = world.person
    plan = make_plan(world, *STORAGE_DELETE)
    with client_for(world) as client:
        bearer = {"authorization": f"Bearer {MCP_TOKEN}"}
        alone = client.get("/", headers=bearer, follow_redirects=False)
        sign_in(client, person.name, person.passphrase)
        token = csrf_of(client.get(f"/plan/{plan.plan_id}").text)
        with_session = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token}, headers=bearer,
                                   follow_redirects=False)
        proximo_token = client.get("/ledger", headers={"authorization": f"PVEAPIToken={world.settings.token_id}={world.secret}"})
    assert alone.status_code == 401 and "takes no bearer token" in alone.text
    assert with_session.status_code == 401 and proximo_token.status_code == 401
    assert not records(world, plan.plan_id, "approve")


def test_a_foreign_host_header_is_refused(tmp_path: Path) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends Host: evil.example."""
    world = World(tmp_path)
    with client_for(world) as client:
        foreign = client.get("/signin", headers={"host": "evil.example:8766"})
        local = client.get("/signin", headers={"host": "localhost:8766"})
    assert foreign.status_code == 421 and local.status_code == 200


def test_security_headers_on_every_answer(tmp_path: Path) -> None:
    world = World(tmp_path)
    with client_for(world) as client:
        page = client.get("/signin")
        script = client.get("/static/console.js")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert script.status_code == 200 and "EventSource" in script.text
    assert 'name="viewport"' in page.text and '<label for="passphrase">' in page.text


def test_approving_writes_the_pipelines_approve_record_naming_the_approver_and_console(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    plan = make_plan(world, *STORAGE_DELETE)
    with client_for(world) as client:
        sign_in(client, person.name, person.passphrase)
        page = client.get(f"/plan/{plan.plan_id}")
        assert "yes: the cluster was read just now" in page.text
        done = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "Approved: ledger record #" in done.text
    [approval] = records(world, plan.plan_id, "approve")
    assert approval.outcome == {"risk": "HIGH", "by": "person", "channel": "console", "approver": person.name,
                                "totp": False, "signed_in": approval.outcome["signed_in"], "cluster": "default"}
    assert approval.actor.face == "console"

    async def apply() -> bool:
        async with world.host() as host:
            assert host.approval(host.get_plan(plan.plan_id)) is not None  # what every face's apply relies on
            return (await host.apply(plan.plan_id, world.actor)).ok

    assert anyio.run(apply) and "local-zfs" not in world.model.storages


def test_deny_needs_a_reason_and_closes_the_plan(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    plan = make_plan(world, *STORAGE_DELETE)
    with client_for(world) as client:
        sign_in(client, person.name, person.passphrase)
        token = csrf_of(client.get(f"/plan/{plan.plan_id}").text)
        empty = client.post(f"/plan/{plan.plan_id}/deny", data={"csrf": token, "reason": "  "})
        assert plan.plan_id in client.get("/waiting").text
        done = client.post(f"/plan/{plan.plan_id}/deny", data={"csrf": token, "reason": "not during business hours"})
        waiting = client.get("/waiting").text
        again = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token})
    assert empty.status_code == 400 and done.status_code == 200 and "Denied: ledger record" in done.text
    [denial] = [r for r in records(world, plan.plan_id, "deny") if r.outcome.get("declined")]
    assert denial.outcome["declined"] is True and denial.outcome["approver"] == person.name
    assert denial.outcome["channel"] == "console" and "not during business hours" in denial.outcome["reason"]
    assert plan.plan_id not in waiting and again.status_code == 409 and "declined by a person" in again.text
    assert not records(world, plan.plan_id, "approve")


def test_critical_needs_the_targets_name_typed(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    plan = make_plan(world, *FIREWALL_LOCKOUT)
    assert plan.risk.value == "CRITICAL" and plan.target
    with client_for(world) as client:
        sign_in(client, person.name, person.passphrase)
        page = client.get(f"/plan/{plan.plan_id}")
        assert 'name="target" required' in page.text
        token = csrf_of(page.text)
        untyped = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token})
        mistyped = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token, "target": plan.target.upper()})
        assert not records(world, plan.plan_id, "approve")
        typed = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token, "target": plan.target})
    assert untyped.status_code == 403 and mistyped.status_code == 403 and "typed exactly" in mistyped.text
    assert typed.status_code == 200
    [approval] = records(world, plan.plan_id, "approve")
    assert approval.outcome["channel"] == "console" and approval.outcome["risk"] == "CRITICAL"


def test_a_stale_plan_is_shown_stale_and_refused(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    plan = make_plan(world, *STORAGE_DELETE)
    with client_for(world) as client:
        sign_in(client, person.name, person.passphrase)
        token = csrf_of(client.get("/").text)
        world.sim.model.storages["nfs-backup"]["disable"] = 1  # someone changes the cluster outside Proximo
        page = client.get(f"/plan/{plan.plan_id}")
        refused = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token})
    assert "is stale" in page.text and 'action="/plan/' + plan.plan_id + '/approve"' not in page.text
    assert refused.status_code == 409 and "is stale" in refused.text
    assert not records(world, plan.plan_id, "approve")
    [refusal] = records(world, plan.plan_id, "deny")  # the attempt is in the ledger; the plan is not declined by it
    assert "stale" in refusal.outcome["reason"] and not refusal.outcome.get("declined")


def test_an_approver_removed_after_signing_in_approves_nothing(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    plan = make_plan(world, *STORAGE_DELETE)
    with client_for(world) as client:
        sign_in(client, person.name, person.passphrase)
        token = csrf_of(client.get(f"/plan/{plan.plan_id}").text)
        ApproverStore(tmp_path).remove(person.name)
        refused = client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token})
        denied = client.post(f"/plan/{plan.plan_id}/deny", data={"csrf": token, "reason": "as a former approver"})
        after = client.get("/", follow_redirects=False)
    assert refused.status_code == 403 and denied.status_code == 403 and "Sign in as an approver first" in refused.text
    assert after.status_code == 303
    with world.ledger() as book:
        assert [r.kind for r in book.find(plan_id=plan.plan_id)] == ["plan"]


def test_the_waiting_list_is_read_from_the_ledger(tmp_path: Path) -> None:
    """Above auto-approval and undecided only, newest first; a plan made by another process (another host on the
    same ledger, after the console opened its own) appears; an expired one does not."""
    world, clock = World(tmp_path), Clock()
    person = world.person
    within = make_plan(world, *MEDIUM_UPDATE)
    with client_for(world, clock=clock) as client:
        sign_in(client, person.name, person.passphrase)
        before = client.get("/waiting").text
        first, second = make_plan(world, *STORAGE_DELETE), make_plan(world, *FIREWALL_LOCKOUT)
        rows = re.findall(r'data-plan="(p-[0-9a-f]+)"', client.get("/waiting").text)
        clock.now = time.time() + world.settings.plan_ttl + 1  # past both plans' expiry, however long making them took
        expired = client.get("/waiting").text
    assert within.plan_id not in before and "No plan is waiting" in before
    assert rows == [second.plan_id, first.plan_id]
    assert "No plan is waiting" in expired


def test_the_ledger_page_filters_and_links_each_record_to_its_plan(tmp_path: Path) -> None:
    world = World(tmp_path)
    person = world.person
    plan = make_plan(world, *STORAGE_DELETE)
    other = make_plan(world, *MEDIUM_UPDATE)
    with client_for(world) as client:
        sign_in(client, person.name, person.passphrase)
        token = csrf_of(client.get(f"/plan/{plan.plan_id}").text)
        client.post(f"/plan/{plan.plan_id}/approve", data={"csrf": token})
        everything = client.get("/ledger").text
        approvals = client.get("/ledger", params={"kind": "approve"}).text
        by_person = client.get("/ledger", params={"actor": person.name}).text
        by_tool = client.get("/ledger", params={"tool": "storage.update"}).text
        future = client.get("/ledger", params={"since": "2999-01-01T00:00"}).text
    assert f'href="/plan/{plan.plan_id}"' in everything and f'href="/plan/{other.plan_id}"' in everything
    assert re.search(r"Chain: \d+ records?, chain intact; head #\d+ [0-9a-f]{16}", everything) and "Last anchor: none" in everything
    assert approvals.count("<td>approve</td>") == 1 and "<td>plan</td>" not in approvals
    assert "<td>approve</td>" in by_person and "<td>plan</td>" not in by_person
    assert other.plan_id in by_tool and plan.plan_id not in by_tool
    assert "No records." in future


def test_off_loopback_needs_tls(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="without TLS"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", (tmp_path / "cert.pem", tmp_path / "key.pem"))
    check_bind("::1", None)


@pytest.mark.parametrize(("given", "kept"), [("/plan/p-0123456789ab", "/plan/p-0123456789ab"), ("//evil.example/", "/"),
                                             ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("", "/")])
def test_after_sign_in_only_a_local_path(given: str, kept: str) -> None:
    assert _local_path(given) == kept


def test_the_service_serves_the_console_on_loopback_unless_given_tls(tmp_path: Path) -> None:
    from proximo.service._service import console_of

    assert console_of({}) is None
    local = console_of({"PROXIMO_CONSOLE_PORT": "8766"})
    assert local is not None and (local.host, local.port, local.tls) == ("127.0.0.1", 8766, None)
    with pytest.raises(BadInput, match="needs PROXIMO_CONSOLE_TLS_CERT"):
        console_of({"PROXIMO_CONSOLE_PORT": "8766", "PROXIMO_CONSOLE_HOST": "0.0.0.0"})
    with pytest.raises(BadInput, match="go together"):
        console_of({"PROXIMO_CONSOLE_PORT": "8766", "PROXIMO_CONSOLE_TLS_CERT": "/etc/cert.pem"})
    with pytest.raises(BadInput, match="port number"):
        console_of({"PROXIMO_CONSOLE_PORT": "http"})
    wide = console_of({"PROXIMO_CONSOLE_PORT": "443", "PROXIMO_CONSOLE_HOST": "10.0.0.5",
                       "PROXIMO_CONSOLE_TLS_CERT": "/etc/c.pem", "PROXIMO_CONSOLE_TLS_KEY": "/etc/k.pem"})
    assert wide is not None and wide.tls == (Path("/etc/c.pem"), Path("/etc/k.pem"))


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def test_the_pictures_text_has_at_least_4_5_to_1_contrast_on_every_effects_colour() -> None:
    """WCAG 2 contrast ratio: (lighter + 0.05) / (darker + 0.05)."""
    from proximo.console._picture import EFFECT_COLOURS, OTHER_EFFECT, UNAFFECTED

    for fill, ink in [*EFFECT_COLOURS.values(), OTHER_EFFECT, UNAFFECTED]:
        light, dark = sorted((_luminance(fill), _luminance(ink)), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (fill, ink)


def test_every_effect_has_its_colour_in_the_picture() -> None:
    """A new effect (a pack's, like the backup pack's recovery-point-lost) must be given a colour, not fall to grey."""
    import typing

    from proximo._types import Effect
    from proximo.console._picture import EFFECT_COLOURS

    assert set(typing.get_args(Effect)) == set(EFFECT_COLOURS)


def test_parallel_guesses_cannot_outrun_the_rate_limit(tmp_path: Path) -> None:
    """Guesses sent at once are checked one at a time, each against the limit as it stands after the previous one."""
    import httpx

    world = World(tmp_path)
    person = world.person
    app = build_console(world.host)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            form = await http.get("/signin")
            token = csrf_of(form.text)
            answers: list[int] = []

            async def guess(n: int) -> None:
                answer = await http.post("/signin", data={"csrf": token, "name": person.name, "passphrase": f"guess-{n}"})
                answers.append(answer.status_code)

            async with anyio.create_task_group() as tg:
                for n in range(3 * MAX_FAILURES):
                    tg.start_soon(guess, n)
            return answers

    with TestClient(app, base_url="http://127.0.0.1"):  # runs the lifespan (the host) for the burst below
        statuses = anyio.run(burst)
    assert sorted(statuses) == [401] * MAX_FAILURES + [429] * (2 * MAX_FAILURES)


def test_the_ledger_page_reads_the_last_anchor_back_from_a_file_sink(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.log"
    world = World(tmp_path / "home", env={"PROXIMO_LEDGER_ANCHOR": f"file:{anchors}"})
    person = world.person
    make_plan(world, *STORAGE_DELETE)
    make_plan(world, *MEDIUM_UPDATE)
    with client_for(world) as client:
        sign_in(client, person.name, person.passphrase)
        page = client.get("/ledger").text
    shown = re.search(r'<p class="hint" id="anchor">Last anchor: ([^<]*)</p>', page)
    assert shown and shown.group(1).startswith("#2 (plan at ") and f"in {anchors}: OK" in shown.group(1)


def test_ledger_first_at_finds_the_first_record_of_a_time_by_binary_search(tmp_path: Path) -> None:
    world = World(tmp_path)
    for _ in range(5):
        make_plan(world, *MEDIUM_UPDATE)
    with world.ledger() as book:
        times = [r.time for r in book.records()]
        assert [book.first_at(t) for t in times] == [1, 2, 3, 4, 5]
        assert book.first_at("2000-01-01T00:00:00") == 1 and book.first_at("2999-01-01T00:00:00") == 6
        assert [r.seq for r in book.search(kind="plan", limit=2)] == [5, 4]
        assert [r.seq for r in book.search(kind="plan", since=times[1], until=times[3])] == [3, 2]
