"""The blast radius as a picture: an inline SVG drawn on the server from the plan and the cluster as read.

One column per node with the node, its guests and the storages it can use; a last column for what belongs to the
whole cluster (backup jobs, and any affected object that sits on no node: a group, a user, a pool). Affected boxes
are filled in their effect's colour and say the effect in words (colour is never the only signal); an edge runs
from the changed object, drawn on top, to each affected box. The same facts are in the table under it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from html import escape

from .._types import Impact, Plan
from ..model import ClusterModel

COLUMN, GAP, ROW, PAD = 220, 14, 26, 10
CHARS = 31  # characters of 12 px text a box holds
TOP = 96  # the changed object's box is above this line; the columns start below it
UNAFFECTED_SHOWN = 10  # per column: every affected box is drawn, the rest up to this many, then "+N more"

# (fill, text) per effect, chosen for at least 4.5:1 contrast of the text on the fill
EFFECT_COLOURS: dict[str, tuple[str, str]] = {
    "data-loss": ("#9b1c1c", "#ffffff"),
    "lockout": ("#9b1c1c", "#ffffff"),
    "wont-boot": ("#c2410c", "#ffffff"),
    "unreachable": ("#c2410c", "#ffffff"),
    "loses-network": ("#c2410c", "#ffffff"),
    "downtime": ("#b45309", "#ffffff"),
    "ha-error": ("#f5b301", "#1a1a1a"),
    "backup-fails": ("#f5b301", "#1a1a1a"),
    "recovery-point-lost": ("#f5b301", "#1a1a1a"),
    "replication-fails": ("#f5b301", "#1a1a1a"),
    "degraded": ("#1d5fa8", "#ffffff"),
    "traffic-blocked": ("#6d28d9", "#ffffff"),
    "traffic-opened": ("#6d28d9", "#ffffff"),
    "privilege-gain": ("#86198f", "#ffffff"),
    "privilege-loss": ("#86198f", "#ffffff"),
    "quorum-risk": ("#9b1c1c", "#ffffff"),
    "unpredictable": ("#374151", "#ffffff"),
}
OTHER_EFFECT = ("#374151", "#ffffff")
UNAFFECTED = ("#f3f4f6", "#1f2937")


def effect_colour(effect: str) -> tuple[str, str]:
    return EFFECT_COLOURS.get(effect, OTHER_EFFECT)


@dataclass
class _Box:
    key: str  # the impact target it stands for ("qemu/104", "storage/local-zfs", "node/pve1")
    label: str
    effects: list[str]
    changed: bool = False


def _columns(plan: Plan, model: ClusterModel | None) -> dict[str, list[_Box]]:
    hit: dict[str, list[Impact]] = defaultdict(list)
    for impact in plan.impacts:
        hit[impact.target].append(impact)
    changed = {f"storage/{plan.target}", f"node/{plan.target}", f"qemu/{plan.target}", f"lxc/{plan.target}"}
    columns: dict[str, list[_Box]] = {}
    placed: set[str] = set()

    def box(key: str, label: str) -> _Box:
        placed.add(key)
        return _Box(key, label, list(dict.fromkeys(i.effect for i in hit.get(key, []))), key in changed)

    if model is not None:
        guest_node = {str(g.vmid): g.node for g in model.guests.values()}
        for node in sorted(model.nodes):
            items = [box(f"node/{node}", f"node {node}")]
            items += [box(g.sid, f"{g.sid} {g.name}".strip()) for g in sorted(model.guests.values(), key=lambda g: g.vmid)
                      if g.node == node]
            items += [box(f"storage/{sid}", f"storage {sid}") for sid in sorted(model.storages)
                      if node in model.storage_nodes(sid)]
            # an affected HA resource or replication job sits on its guest's node
            for target in sorted(hit):
                kind, _, name = target.partition("/")
                vmid = name.partition(":")[2] if kind == "ha" else name.partition("-")[0] if kind == "replication" else ""
                if vmid and guest_node.get(vmid) == node:
                    items.append(box(target, target))
            columns[node] = items
        columns["cluster"] = [box(f"backup/{job.get('id')}", f"backup job {job.get('id')}") for job in model.backup_jobs]
    else:
        columns["cluster"] = []
    columns["cluster"] += [box(target, target) for target in sorted(hit) if target not in placed]
    if not columns["cluster"]:
        del columns["cluster"]
    return columns


def _shown(items: list[_Box]) -> tuple[list[_Box], int]:
    """Every affected (or changed) box, and unaffected ones up to UNAFFECTED_SHOWN; how many were left out."""
    shown, left = [], 0
    quiet = 0
    for item in items:
        if item.effects or item.changed or item.key.startswith("node/"):
            shown.append(item)
        elif quiet < UNAFFECTED_SHOWN:
            shown.append(item)
            quiet += 1
        else:
            left += 1
    return shown, left


def _text(x: float, y: float, text: str, fill: str, *, size: int = 12, weight: str = "normal", anchor: str = "start") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}" fill="{fill}" '
            f'text-anchor="{anchor}">{escape(text)}</text>')


def _clip(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def blast_radius_svg(plan: Plan, model: ClusterModel | None) -> str:
    """The picture of ``plan``'s blast radius on ``model`` (None: the cluster could not be read; affected objects only)."""
    columns = _columns(plan, model)
    laid: list[tuple[_Box, float, float]] = []
    notes: list[tuple[float, float, str]] = []
    height = TOP
    for index, (name, items) in enumerate(columns.items()):
        x = PAD + index * (COLUMN + GAP)
        shown, left = _shown(items)
        y = TOP + (0 if name != "cluster" else ROW)
        for item in shown:
            laid.append((item, x, y))
            y += ROW
        if left:
            notes.append((x, y + 14, f"+{left} more, not affected"))
            y += ROW
        height = max(height, y)
    width = max(PAD * 2 + len(columns) * (COLUMN + GAP) - GAP, 420)
    height += PAD + 20
    source_x, source_y = width / 2, 62
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="radius" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'width="{width:.0f}" height="{height:.0f}" role="img" aria-labelledby="radius-title radius-desc" '
           f'font-family="system-ui, sans-serif">',
           f'<title id="radius-title">Blast radius of {escape(plan.tool)} {escape(plan.target)}</title>',
           f'<desc id="radius-desc">{len({i.target for i in plan.impacts})} affected object(s): '
           f'{escape(", ".join(sorted({i.target for i in plan.impacts}))) or "none"}. The table below lists the same.</desc>']
    # edges first, so boxes sit on top of them
    for item, x, y in laid:
        if item.effects:
            fill = effect_colour(item.effects[0])[0]
            tx, ty = x + COLUMN / 2, y + 2
            out.append(f'<path class="edge" data-to="{escape(item.key)}" d="M{source_x:.0f},{source_y:.0f} C{source_x:.0f},'
                       f'{(source_y + ty) / 2:.0f} {tx:.0f},{(source_y + ty) / 2:.0f} {tx:.0f},{ty:.0f}" fill="none" '
                       f'stroke="{fill}" stroke-width="1.5" stroke-opacity="0.7"/>')
    label = _clip(f"{plan.tool} {plan.target}".strip(), 60)
    box_w = max(220, 8 * len(label))
    out.append(f'<rect x="{source_x - box_w / 2:.0f}" y="18" width="{box_w:.0f}" height="44" rx="6" fill="#111827"/>')
    out.append(_text(source_x, 36, "changed", "#d1d5db", size=11, anchor="middle"))
    out.append(_text(source_x, 54, label, "#ffffff", size=13, weight="bold", anchor="middle"))
    for index, name in enumerate(columns):
        x = PAD + index * (COLUMN + GAP)
        if name == "cluster":
            out.append(_text(x + 4, TOP + 16, "cluster-wide", "#1f2937", size=12, weight="bold"))
    for item, x, y in laid:
        fill, ink = effect_colour(item.effects[0]) if item.effects else UNAFFECTED
        stroke = ' stroke="#111827" stroke-width="2.5" stroke-dasharray="5 3"' if item.changed else ' stroke="#9ca3af"'
        node = item.key.startswith("node/")
        weight = "bold" if node else "normal"
        state = f' data-effect="{escape(" ".join(item.effects))}"' if item.effects else ""
        out.append(f'<g class="box" data-target="{escape(item.key)}"{state}>')
        out.append(f'<rect x="{x:.0f}" y="{y + 2:.0f}" width="{COLUMN}" height="{ROW - 4}" rx="4" fill="{fill}"{stroke}/>')
        said = item.effects[0] + (f" +{len(item.effects) - 1}" if len(item.effects) > 1 else "") if item.effects else ""
        out.append(_text(x + 6, y + 17, _clip(item.label, CHARS - len(said) - 2 if said else CHARS), ink, weight=weight))
        if said:
            out.append(_text(x + COLUMN - 6, y + 17, said, ink, size=11, weight="bold", anchor="end"))
        out.append("</g>")
    for x, y, text in notes:
        out.append(_text(x + 6, y, text, "#4b5563", size=11))
    out.append("</svg>")
    return "\n".join(out)


def legend(plan: Plan) -> list[tuple[str, str, str]]:
    """(effect, fill, text colour) for each effect in the plan, in the order they first appear."""
    return [(effect, *effect_colour(effect)) for effect in dict.fromkeys(i.effect for i in plan.impacts)]
