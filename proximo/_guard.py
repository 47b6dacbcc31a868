"""Where the host calls into a pack's code: anything but a ProximoError it raises becomes one line naming the pack
and the tool (a PackError), for the CLI and MCP alike; the traceback goes to the log (``proximo --debug``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import PackError, ProximoError

log = logging.getLogger("proximo.packs")


@contextmanager
def pack_code(pack: str, tool: str) -> Iterator[None]:
    try:
        yield
    except ProximoError:
        raise
    except Exception as exc:
        log.error("pack %r failed in %s", pack, tool, exc_info=True)
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise PackError(f"pack {pack!r} failed in {tool}: {type(exc).__name__}" + (f": {detail}" if detail else "")
                        + " (a bug in the pack: its traceback is in the log)") from exc
