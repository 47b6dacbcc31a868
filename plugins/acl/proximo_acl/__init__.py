"""Proximo tool pack: acl (being built; see its issue)."""

from __future__ import annotations
