"""Talking to Proxmox VE: the HTTP client (reads, and the executor's writes), TLS, and the API schema.

Packs may use the schema (``schema()``: every endpoint of the PVE API, with its parameters and permissions);
the client belongs to the host.
"""

from ._apischema import ApiSchema, Endpoint, ParamSpec, schema

__all__ = ["ApiSchema", "Endpoint", "ParamSpec", "schema"]
