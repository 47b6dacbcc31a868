"""``proximo token-check``: can Proximo's token do what its tools need? A read, through the host like any other."""

from __future__ import annotations

from typing import Any

import click


def register_doctor(cli: click.Group) -> None:
    from proximo.cli import Context, emit, open_host, overrides, run

    @cli.command("token-check")
    @click.option("--snapshot", type=click.Path(dir_okay=False), help="Check against a snapshot file instead of the cluster.")
    @click.option("--token-id", help="The token to check (default: PROXIMO_TOKEN_ID).")
    @click.option("--json", "as_json", is_flag=True, help="Machine output (JSON) instead of text.")
    @click.pass_obj
    def token_check(ctx: Context, snapshot: str | None, token_id: str | None, as_json: bool) -> None:
        """Check that Proximo's token has what each enabled tool needs; print the pveum fix for each gap."""
        ctx.as_json = as_json
        settings = overrides(ctx.settings, token_id, ())

        async def go() -> None:
            async with open_host(settings, snapshot=snapshot) as host:
                enabled = [t.id for t in host.tools if t.mutating]
                answer = await host.read("access.doctor", {"tools": enabled}, ctx.actor())
            emit(ctx, answer.data, lambda c: _print(c, answer.data))
            if not answer.data["ok"]:
                raise SystemExit(1)

        run(go)


def _print(console: Any, report: dict[str, Any]) -> None:
    kind = "privilege-separated token" if report["privsep"] else "token/user"
    console.print(f"token-check: {report['subject']} ({kind})", markup=False)
    for check in report["checks"]:
        if check["ok"] is None:
            console.print(f"  ?  {check['tool']}: {check['note']}", markup=False)
        elif check["ok"]:
            console.print(f"  ok {check['tool']}", markup=False)
        else:
            for gap in check["missing"]:
                console.print(f"  !! {check['tool']}: missing {', '.join(gap['privileges'])} on {gap['path']} ({gap['why']})", markup=False)
                for line in gap["fix"]:
                    console.print(f"       fix: {line}", markup=False)
    if "proxmox_on_root" in report:
        console.print(f"Proxmox says the token has on /: {', '.join(report['proxmox_on_root']) or 'nothing'}", markup=False)
    console.print("all tools have what they need" if report["ok"] else "some tools will get 403 Permission check failed", markup=False)
