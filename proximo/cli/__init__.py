"""The ``proximo`` command line: built by a factory (no state at import), one host per command."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import _listing

if TYPE_CHECKING:
    from rich.console import Console

    from .._tools import ToolSpec
    from ..trust._pipeline import Host
    from ._approve import approve_at_terminal
    from ._common import Context, emit, overrides, run

# This module is the `proximo` command's entry: it imports click and nothing else of weight. The command tree, and
# with it the packs, the model, rich and msgspec, is built when a command runs; `--help` lists the commands from a
# cache (_listing) while nothing it was built from has changed (issue 14: start-up under 0.15 s).

# What a pack's commands import from here (proximo_register_commands), each from its module on first use (PEP 562)
_LAZY = {"Context": "._common", "emit": "._common", "overrides": "._common", "run": "._common",
         "approve_at_terminal": "._approve"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def make_packs(*args: Any, **kwargs: Any) -> Any:
    """``proximo._plugins.make_packs``, imported when the command tree is built (or a command needs the packs)."""
    from .._plugins import make_packs as make_packs_now

    return make_packs_now(*args, **kwargs)


def open_host(*args: Any, **kwargs: Any) -> Any:
    """``proximo._host.open_host``, imported when a command runs: ``--help`` needs neither it nor the HTTP stack."""
    from .._host import open_host as open_host_now

    return open_host_now(*args, **kwargs)


def make_client(*args: Any, **kwargs: Any) -> Any:
    from .._host import make_client as make_client_now

    return make_client_now(*args, **kwargs)


# What a pack's own commands (proximo_register_commands) may use: they reach the cluster through a host, like ours.
__all__ = ["Context", "approve_at_terminal", "build_cli", "emit", "main", "open_host", "overrides", "run", "serve_command",
           "serve_main"]


class _Root(click.Group):
    """``proximo``: its commands are added on first need; until then ``--help`` lists them from the cache."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._built = False
        self._stand_ins: dict[str, click.Command] | None = None  # while formatting --help from the cache

    def build(self) -> _Root:
        if not self._built:
            self._built = True
            _add_commands(self)
        return self

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._stand_ins is not None:
            return self._stand_ins.get(cmd_name)
        return super(_Root, self.build()).get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        if self._stand_ins is not None:
            return list(self._stand_ins)
        return super(_Root, self.build()).list_commands(ctx)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self._built:
            super().format_commands(ctx, formatter)
            return
        cached = _listing.load()
        if cached is not None:
            self._stand_ins = {c.name or "": c for c in cached}
            try:
                super().format_commands(ctx, formatter)
            finally:
                self._stand_ins = None
            return
        dirs = _listing.path_dirs()  # before building: a pack installed meanwhile makes the next --help rebuild
        super(_Root, self.build()).format_commands(ctx, formatter)
        _listing.save([(name, self.commands[name]) for name in super().list_commands(ctx)], dirs)


def _root() -> _Root:
    @click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(package_name="proximo-proxmox", prog_name="proximo", message="%(prog)s %(version)s")
    @click.option("--debug", is_flag=True, help="Log to stderr, tracebacks included (a pack's failure, for one).")
    @click.option("--cluster", metavar="NAME", help="The cluster every command works on (a name in PROXIMO_CLUSTERS; "
                  "also PROXIMO_CLUSTER). Commands that reach a cluster take --cluster too.")
    @click.pass_context
    def cli(click_ctx: click.Context, debug: bool, cluster: str | None) -> None:
        """Proximo: plan, approve, apply, prove and undo changes to a Proxmox VE cluster."""
        from .._settings import Settings
        from ..errors import BadInput
        from ._common import Context, setup_logging

        if debug or click_ctx.invoked_subcommand not in ("serve", "service"):  # those log as servers do
            setup_logging(debug)
        try:
            settings = Settings.from_env()
            click_ctx.obj = Context(settings=settings.for_cluster(cluster) if cluster else settings)
        except BadInput as exc:
            click.echo(f"proximo: {exc}", err=True)
            sys.exit(exc.exit_code)

    assert isinstance(cli, _Root)
    return cli


def build_cli() -> click.Group:
    """The whole command tree, every pack's commands included."""
    return _root().build()


def _add_commands(cli: click.Group) -> None:
    import msgspec
    from rich.console import Console

    from .._render import print_apply, print_plan, print_record, print_verify
    from .._settings import Settings
    from .._form import suggest
    from ..errors import BadInput, ProximoError
    from ..trust._ledger import LedgerError
    from ..trust._state import open_ledger
    from ._approve import approve_at_terminal, approve_over_socket, service_socket
    from ._common import (Context, ask_terminal, cluster_option, console, emit, guarded, json_option, on_plans_cluster, parse_head,
                          run, scrubbed)
    from ._live import live_apply
    from ._toolhelp import matching, print_tool, print_tools, tool_detail, tool_row

    _plan_command(cli)
    _read_command(cli)

    @cli.command()
    @click.argument("plan_id")
    @cluster_option
    @json_option
    @click.pass_obj
    def apply(ctx: Context, plan_id: str, as_json: bool) -> None:
        """Apply a stored, fresh, approved plan: exactly its steps, nothing else."""
        ctx.as_json = as_json

        async def go() -> None:
            async with open_host(on_plans_cluster(ctx.settings, plan_id)) as host:
                if as_json:
                    result = await host.apply(plan_id, ctx.actor())
                else:  # live on stderr: stdout keeps the result
                    with live_apply(Console(stderr=True, highlight=False)) as view:
                        result = await host.apply(plan_id, ctx.actor(), events=view)
            emit(ctx, result, lambda c: print_apply(c, result))
            if not result.ok:
                sys.exit(1)

        run(go)

    @cli.command()
    @click.option("--reason", default="", help="Why (recorded in the ledger with the freeze).")
    @click.option("--sim", is_flag=True, help="The simulated cluster's ledger (`proximo serve --sim`).")
    @click.pass_obj
    def freeze(ctx: Context, reason: str, sim: bool) -> None:
        """Emergency stop: every apply refuses, in every face and process on this ledger, until `proximo unfreeze`."""

        async def go() -> None:
            from .._world import sim_world

            settings = sim_world(ctx.settings).settings if sim else ctx.settings
            async with open_host(settings, snapshot=_NO_SOURCE) as host:
                record = host.freeze(ctx.actor("terminal"), reason)
            click.echo(f"frozen (ledger #{record.seq}): no plan is applied until a person runs `proximo unfreeze`", err=True)

        run(go)

    @cli.command()
    @click.option("--sim", is_flag=True, help="The simulated cluster's ledger (`proximo serve --sim`).")
    @click.option("--as", "approver", metavar="NAME", help="The approver to unfreeze as (asked when there are several).")
    @click.pass_obj
    def unfreeze(ctx: Context, sim: bool, approver: str | None) -> None:
        """Let applies run again: a person, with their approver passphrase (and TOTP code)."""
        from ._approve import unfreeze_at_terminal

        async def go() -> None:
            from .._world import sim_world

            settings = sim_world(ctx.settings).settings if sim else ctx.settings
            async with open_host(settings, snapshot=_NO_SOURCE) as host:
                unfreeze_at_terminal(host, ctx.actor("terminal"), approver=approver)

        run(go)

    @cli.command()
    @click.argument("plan_id")
    @click.option("--sim", is_flag=True, help="A plan made through `proximo serve --sim` (the simulated cluster's ledger).")
    @click.option("--as", "approver", metavar="NAME", help="The approver to approve as (asked when there are several).")
    @cluster_option
    @click.pass_obj
    def approve(ctx: Context, plan_id: str, sim: bool, approver: str | None) -> None:
        """Approve a plan as a person: confirm it, then give your approver passphrase (and TOTP code)."""

        async def go() -> None:
            socket_path = service_socket(ctx.settings)
            if socket_path is not None and not sim:  # service mode: your unix account is the credential
                if not sys.stdin.isatty():
                    raise BadInput("approve needs a person at an interactive terminal (stdin is not a TTY)")
                approve_over_socket(socket_path, plan_id, ask_terminal, lambda line: click.echo(line, err=True))
                return
            if sim:
                from .._world import sim_world

                async with sim_world(ctx.settings).host() as host:
                    await approve_at_terminal(host, plan_id, ctx.actor("terminal"), approver=approver)
                return
            # live: the plan's freshness is read before anyone is asked, on the cluster it was made on
            async with open_host(on_plans_cluster(ctx.settings, plan_id)) as host:
                await approve_at_terminal(host, plan_id, ctx.actor("terminal"), approver=approver)

        run(go)

    @cli.command()
    @click.argument("seq", type=int)
    @cluster_option
    @json_option
    @click.pass_obj
    def undo(ctx: Context, seq: int, as_json: bool) -> None:
        """Plan the undo of the change recorded at ledger SEQ (a new plan, with its own blast radius)."""
        ctx.as_json = as_json

        async def go() -> None:
            async with open_host(ctx.settings) as host:
                result = await host.undo(seq, ctx.actor())
            emit(ctx, result, lambda c: print_plan(c, result))

        run(go)

    @cli.group()
    def ledger() -> None:
        """The tamper-evident record of every plan, approval, apply and result."""

    @ledger.command("verify")
    @click.option("--head", "expected", metavar="SEQ:HASH",
                  help="A head you kept (every answer carries one): it must still be in the chain.")
    @click.option("--anchor", "anchor_sources", multiple=True, metavar="SOURCE",
                  help="Check against anchors read back from SOURCE: a file (the file sink's, or a syslog file), "
                       "`journald`, or an http(s) URL (repeatable).")
    @json_option
    @click.pass_obj
    def ledger_verify(ctx: Context, expected: str | None, anchor_sources: tuple[str, ...], as_json: bool) -> None:
        """Walk the hash chain and the high-water mark; name the first broken record."""
        from ..trust._anchors import check_anchors, read_anchors

        ctx.as_json = as_json
        try:
            with open_ledger(ctx.settings) as book:
                result = book.verify(expected_head=parse_head(expected, book.chain) if expected else None)
                anchors = [a for source in anchor_sources for a in read_anchors(source, token=ctx.settings.ledger_anchor_token)]
                report = check_anchors(book, anchors) if anchor_sources else None
        except (LedgerError, BadInput) as exc:
            click.echo(f"proximo: ledger: {scrubbed(str(exc))}", err=True)
            sys.exit(exc.exit_code if isinstance(exc, BadInput) else 1)
        if ctx.as_json:
            click.echo(msgspec.json.encode({**msgspec.to_builtins(result), "anchors": report}).decode())
        else:
            print_verify(console(), result)
            if report is not None:
                console().print(f"anchors {'OK' if report.ok else 'BROKEN'}: {report.reason}", markup=False,
                                 style="green" if report.ok else "bold red")
        if not result.ok or (report is not None and not report.ok):
            sys.exit(1)

    @ledger.command("show")
    @click.option("-n", "count", default=20, show_default=True, help="How many records, newest last.")
    @json_option
    @click.pass_obj
    def ledger_show(ctx: Context, count: int, as_json: bool) -> None:
        """Show the newest ledger records."""
        ctx.as_json = as_json

        def newest() -> list[Any]:
            with open_ledger(ctx.settings) as book:
                return book.tail(count)

        records = guarded(newest)  # a ledger that cannot be opened (or reached) is one line, not a traceback
        emit(ctx, records, lambda c: [print_record(c, r) for r in records])

    @cli.command()
    @click.argument("words", nargs=-1)
    @json_option
    @click.pass_obj
    def tools(ctx: Context, words: tuple[str, ...], as_json: bool) -> None:
        """List the tools of every enabled pack; WORDS filter them (id, title, PVE path); a TOOL id shows its
        parameters."""
        ctx.as_json = as_json
        registry = _packs(ctx).tools
        if len(words) == 1 and words[0] in {t.id for t in registry}:
            tool = registry.get(words[0])
            emit(ctx, tool_detail(tool), lambda c: print_tool(c, tool))
            return
        found = matching(registry, words)
        if not found:
            close = suggest(" ".join(words), [t.id for t in registry])
            click.echo(f"proximo: no tool matches {' '.join(words)!r}" + (f" - did you mean {close}?" if close else ""), err=True)
            sys.exit(2)
        emit(ctx, [tool_row(t) for t in found], lambda c: print_tools(c, found))

    @cli.command("clusters")
    @json_option
    @click.pass_obj
    def clusters_command(ctx: Context, as_json: bool) -> None:
        """List the clusters configured: PROXIMO_CLUSTERS's, or PROXIMO_URL's (named default). Reaches none of them."""
        ctx.as_json = as_json
        s = ctx.settings
        rows = [{"name": name, "url": s.clusters[name].url if s.clusters else s.url, "chosen": name == s.cluster}
                for name in s.cluster_names()]

        def human(c: Console) -> None:
            for row in rows:
                c.print(f"{row['name']:<16} {row['url'] or '(no URL)'}{'  (chosen)' if row['chosen'] else ''}", markup=False)
            if s.clusters and not s.cluster:
                c.print("none is chosen: name one with --cluster (or set default in PROXIMO_CLUSTERS)", markup=False)

        emit(ctx, rows, human)

    @cli.command()
    @json_option
    @click.pass_obj
    def packs(ctx: Context, as_json: bool) -> None:
        """List the loaded tool packs (built-in and third-party alike)."""
        ctx.as_json = as_json
        infos = _packs(ctx).packs()

        def human(c: Console) -> None:
            for p in infos:
                c.print(f"{p.name:<10} {p.distribution} {p.version}: {len(p.tools)} tools, {len(p.semantics)} endpoints", markup=False)
            if ctx.settings.disabled_packs:
                c.print(f"disabled: {', '.join(ctx.settings.disabled_packs)}")

        emit(ctx, infos, human)

    @cli.command()
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to write the snapshot.")
    @cluster_option
    @click.pass_obj
    def snapshot(ctx: Context, output: str) -> None:
        """Save the cluster's GET responses to a snapshot file (for offline plans and the simulator)."""
        from .._sources import LiveSource
        from ..model import SNAPSHOT_FORMAT, collect
        from ..model._snapshot import now_iso

        extra: dict[str, dict[str, Any]] = {}

        async def go() -> None:
            async with make_client(ctx.settings) as client:
                # collect's paths carry query strings (/access/users?full=1): LiveSource splits them into params
                source = LiveSource(client, ctx.settings.url)
                api, unseen = await collect(source.get, envelope=source.envelope, extra=extra)
            doc = {"format": SNAPSHOT_FORMAT, "captured_at": now_iso(), "api": api, "extra": extra}
            Path(output).write_text(json.dumps(doc, indent=1, sort_keys=True))
            click.echo(f"wrote {output}: {len(api)} API paths" + (f"; could not see {len(unseen)}: {', '.join(unseen)}" if unseen else ""), err=True)

        run(go)

    @cli.command()
    @click.option("--snapshot", type=click.Path(dir_okay=False, exists=True), help="Serve this snapshot instead of the demo cluster.")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8006, show_default=True, type=int)
    @click.option("--latency", default=0.0, type=float, help="Seconds added to every request.")
    @click.option("--pve-version", "pve_version", metavar="RELEASE",
                  help="The PVE release to simulate (8.4 or 9.1, or a version such as 8.4.1): its /version and its API. "
                       "Default: the snapshot's own, 9.1 for the demo cluster.")
    @click.option("--faults", "faults_file", type=click.Path(dir_okay=False, exists=True),
                  help="Inject the failures this TOML file describes (errors, timeouts, resets, slow answers, failing "
                       "or hanging tasks, an offline node): docs/quickstart.md, \"Rehearse a failure\"; with "
                       "--clusters, into every cluster.")
    @click.option("--clusters", "count", type=click.IntRange(1, 32), default=None, metavar="N",
                  help="Serve N clusters (sim1 ... simN) on PORT, PORT+1, ... (0: free ports) and write a clusters file "
                       "for them (PROXIMO_CLUSTERS) in PROXIMO_HOME/sim-clusters.")
    @click.pass_obj
    def sim(ctx: Context, snapshot: str | None, host: str, port: int, latency: float, pve_version: str | None,
            faults_file: str | None, count: int | None) -> None:
        """Serve a simulated Proxmox VE API (plain http on loopback) from a snapshot or the demo cluster."""
        import secrets

        import uvicorn

        from ..sim import Simulator, demo_snapshot, load_faults, serve_config
        from ..model import load_snapshot

        doc = json.loads(Path(snapshot).read_text()) if snapshot else demo_snapshot()
        token_id = ctx.settings.token_id or "proximo@pve!agent"
        if count is not None:
            from ._sims import serve_clusters

            shown = "snapshot " + snapshot if snapshot else "demo cluster"
            guarded(lambda: serve_clusters(doc, count, semantics=_packs(ctx).semantics, token_id=token_id, host=host,
                                           port=port, latency=latency, pve_version=pve_version, shown=shown,
                                           folder=Path(ctx.settings.home) / "sim-clusters", faults_file=faults_file))
            return
        secret = os.environ.get("PROXIMO_SIM_SECRET") or secrets.token_hex(16)
        try:
            faults = load_faults(faults_file) if faults_file else None
            simulator = Simulator(load_snapshot(doc), _packs(ctx).semantics, tokens={token_id: secret}, latency=latency,
                                  pve_version=pve_version, faults=faults)
        except ProximoError as exc:
            click.echo(f"proximo: {exc}", err=True)
            sys.exit(exc.exit_code)
        release = simulator.model.version.get("version") or simulator.model.release
        click.echo(f"simulated PVE {release} at http://{host}:{port}/api2/json ({'snapshot ' + snapshot if snapshot else 'demo cluster'})", err=True)
        if faults is not None:
            click.echo(f"  injecting {len(faults.rules)} fault rule(s) from {faults_file} (seed {faults.seed})", err=True)
        exports = {"PROXIMO_URL": f"http://{host}:{port}", "PROXIMO_TOKEN_ID": token_id, "PROXIMO_TOKEN_SECRET": secret}
        click.echo("  export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in exports.items()), err=True)
        uvicorn.Server(serve_config(simulator.app, host=host, port=port, log_level="warning")).run()

    @cli.command("console")
    @click.option("--sim", is_flag=True, help="The simulated cluster, with a demo approver whose passphrase is shown once "
                                              "and the demo's two plans waiting.")
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Address to bind. Anything but loopback needs --tls-cert and --tls-key.")
    @click.option("--port", default=8766, show_default=True, type=click.IntRange(0, 65535))
    @click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PEM certificate (chain).")
    @click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PEM private key.")
    @click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="HOST",
                  help="A Host name to answer besides loopback and the bound address (repeatable).")
    @click.pass_obj
    def console_command(ctx: Context, sim: bool, host: str, port: int, tls_cert: Path | None, tls_key: Path | None,
                        allowed_hosts: tuple[str, ...]) -> None:
        """The approval console: a web page where a person signs in, sees a plan's blast radius and approves or denies."""
        from ..console import serve_console

        if (tls_cert is None) != (tls_key is None):
            click.echo("proximo console: --tls-cert and --tls-key go together", err=True)
            sys.exit(2)
        tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        try:
            run(lambda: serve_console(ctx.settings, host=host, port=port, sim=sim, tls=tls, allowed_hosts=allowed_hosts))
        except KeyboardInterrupt:
            pass

    @cli.command()
    @click.pass_obj
    def demo(ctx: Context) -> None:
        """The whole story on the built-in simulated cluster, in about a minute. Touches nothing of yours."""
        from ._demo import run_demo

        # a person at a terminal confirms each approval, as `proximo approve` asks them to
        run(lambda: run_demo(console(), ask_terminal if sys.stdin.isatty() else None))

    cli.add_command(serve_command())
    from ._trust import register as register_trust_commands

    register_trust_commands(cli, Context)
    # the packs PROXIMO_DISABLED_PACKS leaves, however the rest of the environment reads: --help lists their commands
    # from the same variable without reading any other (_listing)
    settings = Settings.from_env() if _env_ok() else Settings(disabled_packs=_listing.disabled_packs())
    make_packs(settings).register_commands(cli)


_NO_SOURCE: Any = None


class _ToolCommand(click.Command):
    """``plan TOOL --help`` and ``read TOOL --help``: the command's help, then the tool's parameters."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if any(a in ("-h", "--help") for a in args) and (tool_id := self._tool_id(args)) is not None:
            from .._settings import Settings
            from ._common import Context, console, guarded
            from ._toolhelp import print_tool

            click.echo(ctx.get_help())
            obj = ctx.find_object(Context)
            registry = make_packs(obj.settings if obj else Settings()).tools
            guarded(lambda: print_tool(console(), registry.get(tool_id)))
            ctx.exit()
        return super().parse_args(ctx, args)

    def _tool_id(self, args: list[str]) -> str | None:
        """The first argument that is neither an option, an option's value (``--snapshot FILE``), nor key=value."""
        valued = {opt for p in self.params if isinstance(p, click.Option) and not p.is_flag for opt in p.opts}
        after_option = False
        for arg in args:
            if after_option:
                after_option = False
            elif arg.startswith("-"):
                after_option = arg in valued
            elif "=" not in arg:
                return arg
        return None


def _tool_lookup(host: Host, tool_id: str) -> ToolSpec | None:
    """The tool, to read values by its schema; None for an unknown one, which the host refuses (and records)."""
    from ..errors import UnknownTool

    try:
        return host.tools.get(tool_id)
    except UnknownTool:
        return None


def _plan_command(cli: click.Group) -> None:
    from .._render import print_next, print_plan
    from ._common import cluster_option, emit, identity, json_option, overrides, parse_assignments, run, snapshot_option

    @cli.command("plan", cls=_ToolCommand)
    @click.argument("tool")
    @click.argument("assignments", nargs=-1)
    @snapshot_option
    @cluster_option
    @identity
    @json_option
    @click.pass_obj
    def plan(ctx: Context, tool: str, assignments: tuple[str, ...], snapshot: str | None, token_id: str | None,
             admin_sources: tuple[str, ...], as_json: bool) -> None:
        """Plan TOOL key=value...: a dry run with blast radius, risk and undo. Changes nothing.

        `proximo tools TOOL` (or `proximo plan TOOL --help`) lists TOOL's parameters."""
        ctx.as_json = as_json
        settings = overrides(ctx.settings, token_id, admin_sources)

        async def go() -> None:
            async with open_host(settings, snapshot=snapshot) as host:
                params = parse_assignments(assignments, _tool_lookup(host, tool))
                result = await host.plan(tool, params, ctx.actor())
                person = host.needs_person(result)

            def human(c: Console) -> None:
                print_plan(c, result)
                print_next(c, result, person=person, offline=snapshot is not None)

            emit(ctx, result, human)

        run(go)


def _read_command(cli: click.Group) -> None:
    from .._render import print_answer
    from ._common import cluster_option, emit, identity, json_option, overrides, parse_assignments, run, snapshot_option

    @cli.command("read", cls=_ToolCommand)
    @click.argument("tool")
    @click.argument("assignments", nargs=-1)
    @snapshot_option
    @cluster_option
    @identity
    @json_option
    @click.option("--text", "as_text", is_flag=True, help="A table even when stdout is not a terminal.")
    @click.option("--wide", is_flag=True, help="Every column, however wide the terminal (a table, even into a pipe).")
    @click.pass_obj
    def read(ctx: Context, tool: str, assignments: tuple[str, ...], snapshot: str | None, token_id: str | None,
             admin_sources: tuple[str, ...], as_json: bool, as_text: bool, wide: bool) -> None:
        """Run a read tool (risk LOW) and print its answer: a table on a terminal, JSON into a pipe or file.

        `proximo tools TOOL` (or `proximo read TOOL --help`) lists TOOL's parameters."""
        # a program reading our stdout wants the data, a person at a terminal the table
        ctx.as_json = as_json or (not as_text and not wide and not sys.stdout.isatty())  # --wide asks for the table
        settings = overrides(ctx.settings, token_id, admin_sources)

        async def go() -> None:
            async with open_host(settings, snapshot=snapshot) as host:
                spec = _tool_lookup(host, tool)
                result = await host.read(tool, parse_assignments(assignments, spec), ctx.actor())
            columns = spec.columns if spec else ()
            emit(ctx, result, lambda c: print_answer(c, result, columns=columns, wide=wide))

        run(go)


def _env_ok() -> bool:
    from .._settings import Settings
    from ..errors import BadInput

    try:
        Settings.from_env()
    except BadInput:
        return False
    return True


def _packs(ctx: Context):  # type: ignore[no-untyped-def]
    from ..errors import ProximoError

    try:
        return make_packs(ctx.settings)
    except ProximoError as exc:
        click.echo(f"proximo: {exc}", err=True)
        sys.exit(exc.exit_code)


def serve_command() -> click.Command:
    """``proximo serve`` and the ``proximo-proxmox`` console script (the same command): the MCP server.

    On stdio, stdout is the protocol stream: everything this command says goes to stderr.
    """

    @click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
                  help="stdio (what MCP clients spawn) or streamable HTTP at /mcp (bearer token: PROXIMO_HTTP_TOKEN).")
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="HTTP: address to bind. Anything but loopback needs PROXIMO_HTTP_TOKEN.")
    @click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="HTTP: port.")
    @click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="HOST[:PORT]",
                  help="HTTP: a Host header to accept besides loopback (repeatable; also PROXIMO_ALLOWED_HOSTS).")
    @click.option("--sim", is_flag=True, help="Serve the built-in simulated cluster: try it with no Proxmox.")
    @click.option("--toolset", type=click.Choice(["compact", "full"]), default=None,
                  help="compact (default): a few tools that search, describe, read and plan every tool; full: one MCP "
                       "tool per tool (also PROXIMO_TOOLSET).")
    def serve(transport: str, host: str, port: int, allowed_hosts: tuple[str, ...], sim: bool, toolset: str | None) -> None:
        """Serve every Proximo tool to MCP clients (stdio by default; --transport http for streamable HTTP)."""
        import msgspec

        from .._settings import Settings
        from ..errors import BadInput, ProximoError
        from ..mcp import McpSettings, serve_mcp

        try:
            settings = Settings.from_env()
            if not sim and not settings.url and not settings.clusters:  # serve's own options: it has no --snapshot
                raise BadInput("no cluster configured: set PROXIMO_URL, PROXIMO_TOKEN_ID and PROXIMO_TOKEN_SECRET "
                               "(or `proximo serve --sim` for the simulated cluster)")
            mcp_settings = McpSettings.from_env()
            if allowed_hosts:
                mcp_settings = msgspec.structs.replace(mcp_settings, allowed_hosts=(*mcp_settings.allowed_hosts, *allowed_hosts))
            if toolset:  # the option wins over PROXIMO_TOOLSET
                mcp_settings = msgspec.structs.replace(mcp_settings, toolset=toolset)
            serve_mcp(settings, mcp_settings, transport="http" if transport == "http" else "stdio", host=host, port=port, sim=sim)
        except ProximoError as exc:
            click.echo(f"proximo serve: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            pass

    return serve


def main() -> None:
    _root()(prog_name="proximo")


def serve_main() -> None:
    """``proximo-proxmox``: what ``uvx --from . proximo-proxmox`` runs; the same as ``proximo serve``."""
    serve_command()(prog_name=os.path.basename(sys.argv[0]) or "proximo-proxmox")
