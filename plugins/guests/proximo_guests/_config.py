"""Loading a guest's config as Proxmox's handlers do before anything else: the file, its lock and its digest.

Shared by the semantics (what a call does) and the handlers' permission checks (who may make it).
"""

from __future__ import annotations

from proximo import PveApiError
from proximo.model import Call, ClusterModel, Guest, as_int

Kind = str  # "qemu" | "lxc"


def kind_of(call: Call) -> Kind:
    return "qemu" if call.template.startswith("/nodes/{node}/qemu") else "lxc"


def label(kind: Kind) -> str:
    """PVE's guest_type(): "VM" for QEMU, "CT" for containers."""
    return "VM" if kind == "qemu" else "CT"


def guest_at(model: ClusterModel, call: Call) -> Guest:
    return model.guest_on(call.path_params["node"], kind_of(call), call.path_params["vmid"])


def check_lock(g: Guest, call: Call) -> None:
    g.check_lock(bool(as_int(call.params.get("skiplock"))))


def config_digest_of(model: ClusterModel, call: Call) -> str | None:
    """The digest of the guest's config file (Guest.digest): what config, resize and disk-move calls compare
    ``digest`` with (pve-common src/PVE/Tools.pm assert_if_modified)."""
    g = model.guests.get(as_int(call.path_params.get("vmid"), -1))
    return None if g is None else g.digest


def check_digest(g: Guest, call: Call) -> None:
    """pve-common src/PVE/Tools.pm assert_if_modified: a given digest must be the file's."""
    given = call.params.get("digest")
    if given and given != g.digest:
        raise PveApiError(500, "detected modified configuration - file changed by other user? Try again.")


# What Qemu.pm update_vm_api (and LXC/Config.pm update_vm) set aside before "no options specified"
_NOT_OPTIONS = {"qemu": ("digest", "skiplock", "force", "background_delay", "skip_cloud_init", "import-working-storage"),
                "lxc": ("digest",)}


def check_options_given(call: Call) -> None:
    """The first thing update_vm_api / update_vm refuse, before any permission or config check."""
    if all(k in _NOT_OPTIONS[kind_of(call)] for k in call.params):
        raise PveApiError(500, "no options specified")
