"""Proximo tool pack: firewall (being built; see its issue)."""

from __future__ import annotations
