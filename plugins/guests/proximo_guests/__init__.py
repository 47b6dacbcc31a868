"""Proximo tool pack: guests (being built; see its issue)."""

from __future__ import annotations
