"""The CLI commands of the trust boundary: approvers, sealing, service mode, ``connect`` and ``doctor``.

Each command that lets a person decide something asks for what an agent does not have: an approver's credential
(local mode), or the person's own unix account on the service's socket (service mode).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.markup import escape

from ..trust._approvers import ApproverStore, check_name, totp_uri
from ..trust._ledger import Actor, seal
from ..service import AGENT_SOCKET, ask_service, connect, install_files, next_steps, run_service
from ._approve import service_socket
from ._common import Ask, ask_terminal, console, guarded, run
from .._settings import Settings
from ..trust._state import SHARED_MARK_FILE, ledger_key, open_ledger, prepare_home, shared_store
from ..errors import BadInput, NotApproved, ProximoError, Refused


def _credential(store: ApproverStore, ask: Ask, *, name: str | None = None, purpose: str) -> str:
    """Ask an existing approver for their credential; the approver's name when it is right."""
    names = store.names()
    name = name or (names[0] if len(names) == 1 else ask(f"Approver ({', '.join(names)}) {purpose}", False).strip())
    passphrase = ask(f"Passphrase of approver {name}", True)
    stored = store.get(name)
    code = ask(f"TOTP code of approver {name}", False) if stored is not None and stored.totp else ""
    return store.verify(name, passphrase, code).name


def _need_terminal(ask: Ask | None) -> Ask:
    if ask is not None:
        return ask
    if not sys.stdin.isatty():
        raise BadInput("this needs a person at an interactive terminal (stdin is not a TTY)")
    return ask_terminal


def add_approver(settings: Settings, name: str, *, totp: bool, actor: Actor, ask: Ask | None = None,
                 echo: Callable[[str], None] = print) -> None:
    """The first approver is set by whoever installs Proximo; every later change needs an existing approver."""
    check_name(name)
    ask = _need_terminal(ask)
    prepare_home(settings.home)
    store = ApproverStore(settings.home)
    by = _credential(store, ask, purpose="to allow this") if store.names() else "(first approver)"
    passphrase = ask(f"New passphrase for {name} (at least 12 characters)", True)
    if ask("The same passphrase again", True) != passphrase:
        raise BadInput("the two passphrases differ: nothing was changed")
    approver = store.add(name, passphrase, with_totp=totp)
    with open_ledger(settings) as book:
        book.append("approver", actor=actor, tool="approver.add",
                    outcome={"action": "add", "name": name, "totp": totp, "by": by})
    echo(f"approver {name} added")
    if approver.totp:
        echo(f"TOTP secret (shown once; add it to an authenticator app): {approver.totp}")
        echo(f"  {totp_uri(name, approver.totp)}")


def remove_approver(settings: Settings, name: str, *, actor: Actor, ask: Ask | None = None,
                    echo: Callable[[str], None] = print) -> None:
    ask = _need_terminal(ask)
    store = ApproverStore(settings.home)
    by = _credential(store, ask, purpose="to allow this")
    store.remove(name)
    with open_ledger(settings) as book:
        book.append("approver", actor=actor, tool="approver.remove", outcome={"action": "remove", "name": name, "by": by})
    echo(f"approver {name} removed")


def seal_locally(settings: Settings, reason: str, *, actor: Actor, ask: Ask | None = None) -> dict[str, Any]:
    ask = _need_terminal(ask)
    store = ApproverStore(settings.home)
    if not store.names():
        raise NotApproved("sealing the ledger needs an approver's credential, and none is set up (proximo approver add)")
    by = _credential(store, ask, purpose="to seal the ledger")
    store = shared_store(settings)
    record = seal(store or settings.ledger_path, ledger_key(settings, store), actor=actor, reason=f"{reason} (sealed by {by})",
                  mark_path=settings.home / SHARED_MARK_FILE if store is not None else None)
    return {"seq": record.seq, "hash": record.hash, "sealed_file": record.outcome["sealed_file"]}


def migrate_locally(settings: Settings, dsn: str) -> str:
    from ..trust._migrate import migrate
    from ..trust._pg import SCHEMES, open_store

    if not dsn.startswith(SCHEMES):  # never echoed: it may hold a password
        raise BadInput("--to must be a postgresql:// URL")
    local = msgspec.structs.replace(settings, db=None)
    if not local.ledger_path.exists():
        raise BadInput(f"no SQLite ledger at {local.ledger_path} to migrate (PROXIMO_HOME, PROXIMO_LEDGER)")
    target = open_store(dsn, timeout=settings.db_timeout)
    key = ledger_key(local)
    with open_ledger(local) as source:
        done = migrate(source, local.home / "plans.sqlite", target, key=key, mark_path=local.home / SHARED_MARK_FILE)
    return (f"migrated {done.records} records and {done.plans} plans to {done.target}: chain verified, head "
            f"#{done.head.seq} {done.head.hash[:16]}. The SQLite files stay where they were. Every machine now needs "
            "PROXIMO_DB and the same ledger key (PROXIMO_LEDGER_KEY, or a copy of "
            f"{local.home / 'ledger.key'})")


def register(cli: click.Group, context: type) -> None:
    """Add the trust commands to the root group (``context`` is the CLI's Context class)."""

    pass_ctx = click.make_pass_decorator(context)

    @cli.group()
    def approver() -> None:
        """The people who may approve plans above the auto-approve level (local mode)."""

    sim_option = click.option("--sim", is_flag=True, help="The approvers of the simulated cluster (`proximo serve --sim`).")

    def home_of(ctx: Any, sim: bool) -> Settings:
        if not sim:
            return ctx.settings
        from .._world import sim_world

        return sim_world(ctx.settings).settings

    @approver.command("add")
    @click.argument("name")
    @click.option("--totp", is_flag=True, help="Also require a TOTP code from an authenticator app.")
    @sim_option
    @pass_ctx
    def approver_add(ctx: Any, name: str, totp: bool, sim: bool) -> None:
        """Add an approver with a passphrase (asked twice, never shown). Once one exists, adding needs one."""
        guarded(lambda: add_approver(home_of(ctx, sim), name, totp=totp, actor=ctx.actor("cli"),
                                      echo=lambda line: click.echo(line, err=True)))

    @approver.command("remove")
    @click.argument("name")
    @sim_option
    @pass_ctx
    def approver_remove(ctx: Any, name: str, sim: bool) -> None:
        """Remove an approver (an approver's credential is asked for)."""
        guarded(lambda: remove_approver(home_of(ctx, sim), name, actor=ctx.actor("cli"),
                                         echo=lambda line: click.echo(line, err=True)))

    @approver.command("list")
    @sim_option
    @pass_ctx
    def approver_list(ctx: Any, sim: bool) -> None:
        """List the approvers (names, and whether a TOTP code is needed)."""
        store = ApproverStore(home_of(ctx, sim).home)
        for name in store.names():
            stored = store.get(name)
            click.echo(f"{name}{' (TOTP)' if stored and stored.totp else ''}")

    ledger_group = cli.commands["ledger"]
    assert isinstance(ledger_group, click.Group)

    @ledger_group.command("seal")
    @click.option("--reason", required=True, help="What was found and who looked (recorded in the new chain's first record).")
    @pass_ctx
    def ledger_seal(ctx: Any, reason: str) -> None:
        """Set a broken ledger aside and start a new chain naming it: applies can run again. A person's decision."""
        socket_path = service_socket(ctx.settings)

        async def go() -> None:
            if socket_path is not None and not os.access(ctx.settings.home, os.R_OK):
                answer = ask_service(socket_path, {"op": "seal", "reason": reason})
                if not answer.get("ok"):
                    raise Refused(str(answer.get("error")))
            else:
                answer = seal_locally(ctx.settings, reason, actor=ctx.actor("cli"))
            click.echo(f"sealed: the broken ledger is kept as {answer['sealed_file']}; the new chain starts at record "
                       f"#{answer['seq']} {str(answer['hash'])[:16]}", err=True)

        run(go)

    @ledger_group.command("migrate")
    @click.option("--to", "dsn", envvar="PROXIMO_DB", required=True, metavar="postgresql://...",
                  help="The PostgreSQL database to copy into (default: PROXIMO_DB; a password here shows in `ps`: "
                       "prefer PROXIMO_DB, PGPASSWORD or ~/.pgpass).")
    @pass_ctx
    def ledger_migrate(ctx: Any, dsn: str) -> None:
        """Copy this machine's SQLite ledger and plans into a shared PostgreSQL store, chain intact, verified after."""
        guarded(lambda: click.echo(migrate_locally(ctx.settings, dsn), err=True))

    @cli.command("connect")
    @click.option("--socket", "socket_path", type=click.Path(dir_okay=False), help="agent.sock (default: in PROXIMO_SERVICE_DIR).")
    @pass_ctx
    def connect_command(ctx: Any, socket_path: str | None) -> None:
        """Speak MCP on stdio to the Proximo service (what an MCP client runs in service mode)."""
        sys.exit(connect(Path(socket_path) if socket_path else ctx.settings.service_dir / AGENT_SOCKET))

    @cli.group()
    def service() -> None:
        """Service mode: Proximo as its own system user, agents and approvers on unix sockets."""

    @service.command("run")
    @click.option("--sim", is_flag=True, help="Over a simulated cluster of its own (try service mode with no Proxmox).")
    @pass_ctx
    def service_run(ctx: Any, sim: bool) -> None:
        """Serve agent.sock (MCP) and approve.sock until stopped (what the systemd unit runs)."""
        import anyio

        def ready(line: str) -> None:
            click.echo(f"proximo: {line}", err=True)

        import logging

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="proximo: %(name)s: %(message)s")

        try:
            anyio.run(lambda: run_service(ctx.settings, sim=sim, ready=ready))
        except ProximoError as exc:
            click.echo(f"proximo service: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            pass

    @service.command("install")
    @click.option("--user", default="proximo", show_default=True, help="The service's own system account.")
    @click.option("--home", default="/var/lib/proximo", show_default=True, type=click.Path(path_type=Path))
    @click.option("--run-dir", default="/run/proximo", show_default=True, type=click.Path(path_type=Path))
    @click.option("--exe", default=None, help="The proximo executable the unit runs (default: this one).")
    @click.option("--write", is_flag=True, help="Write the files (as root) instead of printing them.")
    @click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False, path_type=Path),
                  help="Write under this directory instead of / (for packaging).")
    def service_install(user: str, home: Path, run_dir: Path, exe: str | None, write: bool, root: Path) -> None:
        """Set up service mode: a systemd unit with hardening, the system user and the settings file."""
        exe = exe or _this_executable()
        try:
            files = install_files(user=user, home=home, run=run_dir, exe=exe)
        except BadInput as exc:
            click.echo(f"proximo: {exc}", err=True)
            sys.exit(exc.exit_code)
        for path, (text, mode) in files.items():
            target = root / path.lstrip("/")
            if write:
                if target.exists() and path.endswith(".env"):
                    click.echo(f"kept {target} (it exists)", err=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                os.chmod(target, mode)
                click.echo(f"wrote {target}", err=True)
            else:
                click.echo(f"# --- {path} (mode {mode:04o})")
                click.echo(text)
        for line in next_steps(user=user, run=run_dir, written=write):
            click.echo(line)

    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="Machine output.")
    @pass_ctx
    def doctor(ctx: Any, as_json: bool) -> None:
        """Say which deployment this is (service or local), what holds in it, and what to fix."""
        from ._doctor import diagnose

        found = diagnose(ctx.settings)
        if as_json:
            click.echo(msgspec.json.encode({**msgspec.to_builtins(found), "ok": found.ok}).decode())
        else:
            out = console()
            out.print(f"[bold]{found.summary}[/bold]")
            for f in found.findings:
                style = {"ok": "green", "warn": "yellow", "fail": "bold red"}[f.level]
                out.print(f"[{style}]{f.level:>4}[/{style}] {f.what}: {escape(f.detail)}", markup=True, highlight=False)
                for argv in f.fix:  # quoted for a shell: a token id's `!`, a path's spaces
                    out.print(f"       fix: {shlex.join(argv)}", markup=False, highlight=False)
            out.print("[bold]holds:[/bold]")
            for line in found.holds:
                out.print(f"  - {line}", markup=False)
            out.print("[bold]does not hold:[/bold]")
            for line in found.does_not_hold:
                out.print(f"  - {line}", markup=False)
        sys.exit(0 if found.ok else 1)


def _this_executable() -> str:
    import shutil

    return shutil.which("proximo") or f"{sys.executable} -m proximo"


__all__ = ["add_approver", "register", "remove_approver", "seal_locally"]
