"""What every CLI command shares: the context, option sets, output, and one guard that turns errors into one line.

Packs that add commands (``proximo_register_commands``) use these too: ``Context``, ``emit``, ``run``, ``overrides``.
"""

from __future__ import annotations

import getpass
import logging
import re
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import click
import msgspec
from rich.console import Console

from .._form import coerce_form
from .._render import plan_document
from .._settings import Settings
from .._tools import ToolSpec
from .._types import Plan
from ..errors import BadInput, ProximoError
from ..trust._ledger import Actor, LedgerError, LedgerHead

T = TypeVar("T")


def parse_head(text: str, chain: str) -> LedgerHead:
    """``SEQ:HASH`` (as a client kept it from an answer's ledger head) -> a head to check."""
    seq, sep, digest = text.strip().partition(":")
    if not sep or not (seq.isascii() and seq.isdigit()) or len(seq) > 18 or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise BadInput(f"--head: expected SEQ:HASH (a number, a colon, 64 hex digits), got {text[:80]!r}")
    return LedgerHead(seq=int(seq), hash=digest, chain=chain)


def parse_assignments(args: tuple[str, ...], tool: ToolSpec | None) -> dict[str, Any]:
    """``key=value`` pairs, each value read by the parameter's type in the tool's schema, as Proxmox reads form
    strings (``memory=1024`` an integer, ``name=123`` a string, lists and objects JSON). An unknown tool's values
    stay strings: the host refuses the tool, with a suggestion."""
    out: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise BadInput(f"expected key=value, got {arg!r}", about=tool.id if tool else None)
        if key in out:
            raise BadInput(f"parameter {key!r} given twice")
        out[key] = value
    return coerce_form(tool.input_schema(), out) if tool is not None else dict(out)


class Context(msgspec.Struct):
    settings: Settings
    as_json: bool = False

    def actor(self, face: str = "cli") -> Actor:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
        return Actor(token_id=self.settings.token_id or "-", face=face, client=who)


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def emit(ctx: Context, value: Any, human: Callable[[Console], None]) -> None:
    if ctx.as_json:
        if isinstance(value, Plan):
            value = plan_document(value)
        click.echo(msgspec.json.encode(value).decode())
    else:
        human(console())


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return guarded(lambda: anyio.run(fn))


def guarded(fn: Callable[[], T]) -> T:
    """Run a command's body: a ProximoError or LedgerError is one line and its exit code, never a traceback."""
    try:
        return fn()
    except ProximoError as exc:
        about = getattr(exc, "about", None)  # where an operator reads a tool's parameters, or the tools
        see = "" if about is None else f" (see `proximo tools{' ' + about if about else ''}`)"
        click.echo(f"proximo: {scrubbed(str(exc))}{see}", err=True)
        sys.exit(exc.exit_code)
    except LedgerError as exc:
        click.echo(f"proximo: ledger: {scrubbed(str(exc))}", err=True)
        sys.exit(1)


def scrubbed(message: str) -> str:
    """An error line without the token secret, even when the input that is echoed back was the secret."""
    ctx = click.get_current_context(silent=True)
    settings = getattr(ctx.find_object(Context), "settings", None) if ctx else None
    return str(settings.scrub(message)) if settings else message


def overrides(settings: Settings, token_id: str | None, admin_sources: tuple[str, ...]) -> Settings:
    if token_id:
        settings = msgspec.structs.replace(settings, token_id=token_id)
    if admin_sources:
        settings = msgspec.structs.replace(settings, admin_sources=list(admin_sources))
    return settings


def _choose_cluster(click_ctx: click.Context, _: click.Parameter, name: str | None) -> None:
    """``--cluster NAME``: the context's settings on that cluster (PROXIMO_CLUSTERS; ``default`` is PROXIMO_URL's)."""
    obj = click_ctx.find_object(Context)
    if name is None or obj is None:
        return
    try:
        obj.settings = obj.settings.for_cluster(name)
    except BadInput as exc:  # one line, as every other error (click's own would add the usage)
        click.echo(f"proximo: --cluster: {exc}", err=True)
        sys.exit(exc.exit_code)


def on_plans_cluster(settings: Settings, plan_id: str) -> Settings:
    """The settings to decide or apply ``plan_id`` with when several clusters are configured and none was named:
    the plan's own cluster (a plan names the cluster it was made on). A cluster that was named is kept: the host
    then refuses another cluster's plan, and says so."""
    if settings.url or not settings.clusters:
        return settings
    from ..trust._state import open_plans

    plans = open_plans(settings)
    try:
        plan = plans.get(plan_id)
    finally:
        plans.close()
    return settings.for_cluster(plan.cluster.name) if plan.cluster is not None else settings


cluster_option = click.option(
    "--cluster", metavar="NAME", expose_value=False, callback=_choose_cluster,
    help="The cluster (a name in PROXIMO_CLUSTERS): needed when several are configured and none is the default.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine output (JSON) instead of text.")
snapshot_option = click.option("--snapshot", type=click.Path(dir_okay=False), help="Work offline on a snapshot file.")
identity_options = [
    click.option("--token-id", help="Proximo's own token id (user@realm!token), for lockout analysis."),
    click.option("--admin-source", "admin_sources", multiple=True, help="Address or CIDR people manage from (repeatable)."),
]


def identity(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(identity_options):
        f = option(f)
    return f


def setup_logging(debug: bool) -> None:
    """``--debug``: every log record on stderr, tracebacks included. Otherwise warnings, one line each, without
    tracebacks, and not a pack's failure: the command's own error line says that (``proximo._guard``)."""
    root = logging.getLogger("proximo")
    for old in [h for h in root.handlers if h.get_name() == "proximo-cli"]:
        root.removeHandler(old)  # one per process, however many commands it runs (tests run many)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("proximo-cli")
    if debug:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG)
    else:
        handler.setLevel(logging.WARNING)
        handler.setFormatter(_OneLine())
        handler.addFilter(lambda record: record.name != "proximo.packs")
    root.addHandler(handler)


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"proximo: {record.getMessage()}"


Ask = Callable[[str, bool], str]  # (prompt, hide the answer) -> what the person typed


def ask_terminal(prompt: str, hidden: bool) -> str:
    return str(click.prompt(prompt, default="", show_default=False, hide_input=hidden))


