"""Several clusters from one Proximo (issue 21): the clusters file, choosing a cluster, and plans bound to theirs.

A plan names the cluster it was made on (name, URL, what the cluster says it is in /cluster/status); the host
refuses it on any other at approve, at the check before a person is asked, and at apply, whichever tool made it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from proximo._host import open_host
from proximo._settings import Settings
from proximo._types import Plan
from proximo.errors import BadInput, OtherCluster, PolicyDenied
from proximo.testing import SimClusters
from proximo.trust._pipeline import ClientForm, plan_hash

pytestmark = pytest.mark.anyio
MEDIUM = ("storage.update", {"storage": "nfs-backup", "prune-backups": "keep-last=3"})  # auto-approved (MEDIUM)
HIGH = ("guest.stop", {"vmid": 104})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the clusters file -------------------------------------------------------------------------------


def _file(tmp_path: Path, text: str, token: str = "0123456789abcdef0123456789abcdef") -> dict[str, str]:
    (tmp_path / "east.token").write_text(token + "\n")
    (tmp_path / "clusters.toml").write_text(text)
    return {"PROXIMO_HOME": str(tmp_path / "home"), "PROXIMO_CLUSTERS": str(tmp_path / "clusters.toml")}


EAST = '[[cluster]]\nname = "east"\nurl = "https://10.0.0.1:8006"\ntoken_id = "proximo@pve!agent"\ntoken_file = "east.token"\n'


@pytest.mark.parametrize(("text", "error"), [
    (EAST + 'urll = "x"\n', r"cluster 'east': unknown key 'urll'"),
    ('colour = "blue"\n' + EAST, r"unknown key 'colour'"),
    (EAST + EAST, r"cluster 'east' is named twice"),
    (EAST.replace('"east"', '".."'), r"'\.\.' is not a cluster name"),
    (EAST.replace('"east"', '"a/b"'), r"'a/b' is not a cluster name"),
    (EAST.replace('"east"', '"east\u0661"'), r"is not a cluster name"),  # an Arabic-Indic digit: not an id's digit
    (EAST.replace('"east"', '"East"'), r"'East' is not a cluster name"),
    (EAST.replace('"east"', '""'), r"'' is not a cluster name"),
    (EAST.replace('"east"', "7"), r"7 is not a cluster name"),
    (EAST.replace('"east.token"', '"missing.token"'), r"token_file .*missing\.token: cannot read it"),
    (EAST.replace('url = "https://10.0.0.1:8006"\n', ""), r"cluster 'east': url must be given"),
    (EAST.replace("https://10.0.0.1:8006", "ftp://x"), r"url must be http\(s\)://HOST\[:PORT\]"),
    (EAST.replace("proximo@pve!agent", "root"), r"token_id must be user@realm!tokenname"),
    (EAST + 'tls_fingerprint = "AB:CD"\n', r"tls_fingerprint: TLS fingerprint must be a SHA-256"),
    (EAST + 'ca_file = "nope.pem"\n', r"ca_file: no such file: .*nope\.pem"),
    (EAST + 'policy = "nope.toml"\n', r"policy: no such file"),
    (EAST + 'policy = { max_risk = "EXTREME" }\n', r"cluster 'east': policy: "),
    ('default = "west"\n' + EAST, r"default 'west' is none of the clusters \(east\)"),
    ("", r"no clusters: add one \[\[cluster\]\] table"),
    ("[[cluster\n", r"not valid TOML"),
])
def test_a_bad_clusters_file_is_one_line_and_nothing_starts(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(BadInput, match=error) as caught:
        Settings.from_env(_file(tmp_path, text))
    assert "\n" not in str(caught.value) and str(caught.value).startswith("PROXIMO_CLUSTERS: ")
    assert "0123456789abcdef" not in str(caught.value)


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"token_file .*east\.token is empty"):
        Settings.from_env(_file(tmp_path, EAST, token=""))


def test_the_single_cluster_variables_may_not_stand_beside_a_clusters_file(tmp_path: Path) -> None:
    env = {**_file(tmp_path, EAST), "PROXIMO_URL": "https://pve:8006", "PROXIMO_TOKEN_FILE": "/x"}
    with pytest.raises(BadInput, match=r"PROXIMO_CLUSTERS and PROXIMO_URL, PROXIMO_TOKEN_FILE are both set"):
        Settings.from_env(env)


def test_a_cluster_is_chosen_by_name_by_default_or_as_the_only_one(tmp_path: Path) -> None:
    west = EAST.replace("east", "west").replace("10.0.0.1", "10.0.0.2")
    (tmp_path / "west.token").write_text("fedcba9876543210fedcba9876543210")
    env = _file(tmp_path, EAST + west)
    several = Settings.from_env(env)
    assert several.cluster == "" and several.url == "" and several.cluster_names() == ["east", "west"]
    with pytest.raises(BadInput, match=r"^several clusters are configured \(east, west\): name one"):
        several.for_cluster(None)
    with pytest.raises(BadInput, match=r"^no cluster 'north': the clusters are east, west$"):
        several.for_cluster("north")
    west_settings = several.for_cluster("west")
    assert (west_settings.cluster, west_settings.url) == ("west", "https://10.0.0.2:8006")
    assert west_settings.token_secret is not None and west_settings.token_secret.reveal() == "fedcba9876543210fedcba9876543210"
    assert Settings.from_env({**env, "PROXIMO_CLUSTER": "west"}).url == "https://10.0.0.2:8006"
    (tmp_path / "clusters.toml").write_text('default = "west"\n' + EAST + west)
    assert Settings.from_env(env).cluster == "west"
    (tmp_path / "clusters.toml").write_text(EAST)
    assert Settings.from_env(env).cluster == "east"  # the only one


def test_the_single_cluster_variables_are_the_cluster_named_default(tmp_path: Path) -> None:
    env = {"PROXIMO_HOME": str(tmp_path), "PROXIMO_URL": "https://pve:8006", "PROXIMO_TOKEN_ID": "a@pam!t",
           "PROXIMO_TOKEN_SECRET": "s" * 36}
    settings = Settings.from_env(env)
    assert settings.cluster == "default" and settings.cluster_names() == ["default"]
    assert settings.for_cluster("default") is settings and settings.for_cluster(None) is settings
    with pytest.raises(BadInput, match=r"^no cluster 'east': one cluster is configured, 'default' \(PROXIMO_URL\)"):
        settings.for_cluster("east")
    with pytest.raises(BadInput, match=r"no cluster 'east'"):
        Settings.from_env({**env, "PROXIMO_CLUSTER": "east"})


def test_a_cluster_without_a_policy_of_its_own_has_proximo_policy(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text('max_risk = "MEDIUM"\n')
    west = EAST.replace("east", "west") + 'policy = { deny_tools = ["guest.*"] }\n'
    (tmp_path / "west.token").write_text("fedcba9876543210fedcba9876543210")
    settings = Settings.from_env({**_file(tmp_path, EAST + west), "PROXIMO_POLICY": str(tmp_path / "policy.toml")})
    assert settings.for_cluster("east").policy_path == tmp_path / "policy.toml"
    west_settings = settings.for_cluster("west")
    assert west_settings.policy_path is None and west_settings.policy_table == {"deny_tools": ["guest.*"]}


# --- plans bound to their cluster --------------------------------------------------------------------


async def test_a_plan_for_one_cluster_is_refused_on_the_other(tmp_path: Path) -> None:
    fleet = SimClusters(tmp_path)
    east, west = fleet["east"], fleet["west"]
    async with east.host() as on_east, west.host() as on_west:
        mine = await on_east.plan(*MEDIUM, east.actor)
        theirs = await on_west.plan(*MEDIUM, west.actor)
        assert mine.cluster is not None and (mine.cluster.name, mine.cluster.url, mine.cluster.id) == (
            "east", "http://east.sim:8006", "cluster:east")
        assert theirs.cluster is not None and theirs.cluster.id == "cluster:west"
        # both clusters have a node pve1 and the storage: the same change, yet each plan is its cluster's own
        with pytest.raises(OtherCluster, match=rf"^plan {mine.plan_id} was made on cluster 'east', not 'west'"):
            await on_west.apply(mine.plan_id, west.actor)
        with pytest.raises(OtherCluster, match="made on cluster 'east', not 'west'"):
            await on_west.check_open(on_west.get_plan(mine.plan_id))
        with pytest.raises(OtherCluster, match="made on cluster 'east', not 'west'"):
            on_west.approve(mine.plan_id, west.actor, ClientForm("mcp-elicitation", "pytest"))
        assert [m for m, _ in west.sim.requests if m != "GET"] == []  # nothing reached west
        assert (await on_east.apply(mine.plan_id, east.actor)).ok
        assert (await on_west.apply(theirs.plan_id, west.actor)).ok
    assert [m for m, _ in east.sim.requests if m != "GET"] == ["PUT"]
    assert [m for m, _ in west.sim.requests if m != "GET"] == ["PUT"]
    records = east.ledger().tail(50)  # one ledger for both
    by_plan = {(r.plan_id, r.kind): r.outcome.get("cluster") for r in records if r.plan_id}
    assert by_plan[(mine.plan_id, "plan")] == by_plan[(mine.plan_id, "apply-start")] == "east"
    assert by_plan[(mine.plan_id, "approve")] == by_plan[(mine.plan_id, "apply-result")] == "east"
    assert by_plan[(theirs.plan_id, "apply-result")] == "west"
    refusals = [r for r in records if r.kind == "deny" and r.plan_id == mine.plan_id]
    assert refusals and all(r.outcome["cluster"] == "west" for r in refusals)  # where the refusal happened
    assert east.ledger().verify().ok


async def test_the_undo_of_a_change_is_planned_only_on_the_cluster_it_changed(tmp_path: Path) -> None:
    fleet = SimClusters(tmp_path)
    east, west = fleet["east"], fleet["west"]
    async with east.host() as on_east, west.host() as on_west:
        plan = await on_east.plan(*MEDIUM, east.actor)
        done = await on_east.apply(plan.plan_id, east.actor)
        with pytest.raises(OtherCluster, match=rf"ledger record {done.ledger.seq}: plan {plan.plan_id} changed cluster "
                                               r"'east', not 'west'"):
            await on_west.undo(done.ledger.seq, west.actor)
        undo = await on_east.undo(done.ledger.seq, east.actor)
        assert undo.cluster is not None and undo.cluster.name == "east"


async def test_a_plan_made_with_api_call_is_bound_the_same_way(tmp_path: Path) -> None:
    """The binding is the host's: a plan of the generic api.call tool is refused on the other cluster too."""
    fleet = SimClusters(tmp_path)
    east, west = fleet["east"], fleet["west"]
    async with east.host() as on_east, west.host() as on_west:
        plan = await on_east.plan("api.call", {"method": "PUT", "path": "/storage/nfs-backup",
                                               "params": {"prune-backups": "keep-last=3"}}, east.actor)
        assert plan.cluster is not None and plan.cluster.name == "east" and not plan.blocked
        with pytest.raises(OtherCluster, match="made on cluster 'east', not 'west'"):
            await on_west.apply(plan.plan_id, west.actor)
    assert [m for m, _ in west.sim.requests if m != "GET"] == []


async def test_a_cluster_name_re_pointed_at_another_url_refuses_the_old_plans(tmp_path: Path) -> None:
    fleet = SimClusters(tmp_path)
    east, west = fleet["east"], fleet["west"]
    async with east.host() as on_east:
        plan = await on_east.plan(*HIGH, east.actor)
    # the operator edits the clusters file: "east" is now another machine
    moved = msgspec.structs.replace(east.settings, url="http://east-new.sim:8006")
    async with open_host(moved, transport=east.transport(), packs=fleet.packs) as host:
        with pytest.raises(OtherCluster, match=r"'east' at http://east\.sim:8006, and 'east' is now http://east-new\.sim:8006"):
            host.approve(plan.plan_id, east.actor, east.person)
        with pytest.raises(OtherCluster, match="is now http://east-new"):
            await host.apply(plan.plan_id, east.actor)
    # the same name and URL, but another cluster answers there (the address now reaches west's nodes, and the token
    # happens to be good there too)
    west.sim.tokens[east.actor.token_id] = east.secret
    async with open_host(east.settings, transport=west.transport(), packs=fleet.packs) as host:
        host.approve(plan.plan_id, east.actor, east.person)  # name and URL match: the person may approve ...
        with pytest.raises(OtherCluster, match=r"was made on cluster:east \(cluster 'east'\), and http://east\.sim:8006 "
                                               r"now answers as cluster:west"):
            await host.apply(plan.plan_id, east.actor)  # ... but what answers is checked before anything is sent
    assert [m for m, _ in west.sim.requests if m != "GET"] == [] and [m for m, _ in east.sim.requests if m != "GET"] == []


def test_a_plan_from_before_clusters_were_named_hashes_as_it_did() -> None:
    """Plans stored before this change have no ``cluster``: their hash (which their ledger record holds) is unchanged."""
    plan = Plan(plan_id="p" * 16, tool="storage.update", params={}, risk="MEDIUM", reversible=True, blocked=False,  # type: ignore[arg-type]
                blockers=[], complete=True, unseen=[], impacts=[], steps=[], undo=None, undo_note="", notes=[], target="x",
                created_at="2026-01-01T00:00:00Z", expires_at="2026-01-01T00:10:00Z", source="live:http://pve", fingerprint={})
    assert "cluster" not in plan.content_hash_fields()
    import hashlib

    assert plan_hash(plan) == hashlib.sha256(msgspec.json.encode(
        {k: v for k, v in msgspec.to_builtins(plan).items() if k not in ("hash", "ledger", "cluster")}, order="sorted")).hexdigest()


async def test_no_clusters_token_secret_reaches_the_ledger_whichever_host_records_it(tmp_path: Path) -> None:
    """A secret of one cluster pasted into a request on another is scrubbed too: the settings hold every cluster's."""
    fleet = SimClusters(tmp_path)
    east, west = fleet["east"], fleet["west"]
    async with west.host() as on_west:
        with pytest.raises(BadInput):
            await on_west.plan("storage.update", {"storage": east.secret, "comment": f"x{east.secret}"}, west.actor)
    tail = str([msgspec.to_builtins(r) for r in east.ledger().tail(5)])
    assert east.secret not in tail and west.secret not in tail and "***redacted***" in tail


async def test_a_renamed_cluster_refuses_the_plans_made_under_its_old_name(tmp_path: Path) -> None:
    """The operator renames "east" to "east-1" in the clusters file (same URL, same cluster): its old plans name
    another cluster, and are refused rather than guessed to be the same."""
    fleet = SimClusters(tmp_path)
    east = fleet["east"]
    async with east.host() as on_east:
        plan = await on_east.plan(*MEDIUM, east.actor)
    renamed = msgspec.structs.replace(east.settings, cluster="east-1")
    async with open_host(renamed, transport=east.transport(), packs=fleet.packs) as host:
        with pytest.raises(OtherCluster, match="made on cluster 'east', not 'east-1'"):
            await host.apply(plan.plan_id, east.actor)
    assert [m for m, _ in east.sim.requests if m != "GET"] == []


async def test_each_cluster_has_its_own_policy(tmp_path: Path) -> None:
    fleet = SimClusters(tmp_path)
    text = fleet.file.read_text().replace('name = "west"', 'name = "west"\npolicy = { deny_tools = ["storage.*"] }')
    fleet.file.write_text(text)
    settings = Settings.from_env({"PROXIMO_HOME": str(tmp_path), "PROXIMO_CLUSTERS": str(fleet.file)})
    east, west = fleet["east"], fleet["west"]
    async with open_host(settings, cluster="west", transport=west.transport(), packs=fleet.packs) as on_west:
        with pytest.raises(PolicyDenied, match=r"storage.update: the policy file denies this tool \(deny_tools 'storage\.\*'\)"):
            await on_west.plan(*MEDIUM, west.actor)
    async with open_host(settings, cluster="east", transport=east.transport(), packs=fleet.packs) as on_east:
        assert not (await on_east.plan(*MEDIUM, east.actor)).blocked


async def test_a_plan_stored_before_clusters_were_named_still_verifies_and_applies(tmp_path: Path,
                                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An older Proximo made plans without ``cluster``: their ledger records and hashes stand, and such a plan applies
    where its ``source`` (the URL) says, as it did."""
    from proximo.trust._pipeline import Host

    fleet = SimClusters(tmp_path)
    east = fleet["east"]
    with monkeypatch.context() as patch:
        patch.setattr(Host, "cluster_ref", lambda self, model: None)  # what a plan of an older Proximo looks like
        async with east.host() as old:
            plan = await old.plan(*MEDIUM, east.actor)
    assert plan.cluster is None and "cluster" not in plan.content_hash_fields()
    async with east.host() as host:
        assert host.get_plan(plan.plan_id).hash == plan.hash
        assert (await host.apply(plan.plan_id, east.actor)).ok
    assert east.ledger().verify().ok


async def test_the_hourly_cap_counts_each_clusters_applies(tmp_path: Path) -> None:
    """PROXIMO_POLICY's max_applies_per_hour = 1 holds on each cluster that has it: east's apply does not use west's."""
    (tmp_path / "policy.toml").write_text("max_applies_per_hour = 1\n")
    fleet = SimClusters(tmp_path / "fleet", env={"PROXIMO_POLICY": str(tmp_path / "policy.toml")})
    east, west = fleet["east"], fleet["west"]
    async with east.host() as on_east, west.host() as on_west:
        first = await on_east.plan(*MEDIUM, east.actor)
        again = await on_east.plan("storage.update", {"storage": "nfs-backup", "prune-backups": "keep-last=5"}, east.actor)
        theirs = await on_west.plan(*MEDIUM, west.actor)
        assert (await on_east.apply(first.plan_id, east.actor)).ok
        assert (await on_west.apply(theirs.plan_id, west.actor)).ok  # west's first apply this hour
        with pytest.raises(PolicyDenied, match="the policy allows 1 applies an hour, and 1 started in the last hour"):
            await on_east.apply(again.plan_id, east.actor)


async def test_a_face_serves_every_cluster_of_the_file(tmp_path: Path) -> None:
    """What `proximo serve` and `proximo-a2a` serve (_host.served_clusters): a host factory per cluster, by name."""
    from proximo._host import served_clusters
    from proximo._plugins import make_packs
    from proximo._world import clusters_file

    path = clusters_file(tmp_path / "c", [(name, f"http://127.0.0.1:{port}", "proximo@pve!agent", "s" * 32)
                                          for name, port in (("east", 18006), ("west", 18007))])
    env = {"PROXIMO_HOME": str(tmp_path), "PROXIMO_CLUSTERS": str(path)}
    settings = Settings.from_env(env)
    factories, default, where = await served_clusters(settings, make_packs(settings))  # makes clients, connects none
    assert isinstance(factories, dict) and list(factories) == ["east", "west"]
    assert default == "" and where == "2 clusters (east, west)"
    chosen = Settings.from_env({**env, "PROXIMO_CLUSTER": "west"})
    assert (await served_clusters(chosen, make_packs(chosen)))[1] == "west"


async def test_the_service_desk_decides_each_plan_on_its_own_cluster(tmp_path: Path) -> None:
    """Service mode on several clusters: approve.sock's desk approves a plan with its own cluster's host (where the
    approval is checked and recorded), whichever cluster the service's first host is on."""
    import os

    from proximo.service._service import AccessRules, ApprovalDesk, Peer

    approver = os.getuid() + 4242  # an account that is not Proximo's own (the kernel names it on the socket)
    fleet = SimClusters(tmp_path, env={"PROXIMO_APPROVERS": str(approver)})
    east, west = fleet["east"], fleet["west"]
    rules = AccessRules(service_uid=os.getuid(), approvers=frozenset({approver}), agents=frozenset())
    async with east.host() as on_east, west.host() as on_west:
        plan = await on_west.plan(*HIGH, west.actor)
        only_east = ApprovalDesk(on_east, rules, fleet.settings)  # a desk that knows one cluster refuses the other's
        refused = await only_east.answer(Peer(pid=1, uid=approver, gid=approver), {"op": "approve", "plan_id": plan.plan_id})
        assert refused["ok"] is False and "made on cluster 'west', not 'east'" in refused["error"]
        desk = ApprovalDesk(on_east, rules, fleet.settings, {"east": on_east, "west": on_west})
        answer = await desk.answer(Peer(pid=1, uid=approver, gid=approver), {"op": "approve", "plan_id": plan.plan_id})
        assert answer["ok"] is True, answer
        assert (await on_west.apply(plan.plan_id, west.actor)).ok
    approval = west.ledger().find(plan_id=plan.plan_id, kind="approve")[-1]
    assert approval.outcome["cluster"] == "west" and approval.outcome["channel"] == "unix-socket"
