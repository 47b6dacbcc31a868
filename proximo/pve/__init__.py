"""Talking to Proxmox VE: the HTTP client (reads, and the executor's writes), TLS, and the API schema.

Packs may use the schema: ``schema(release)`` is every endpoint of one PVE release's API (8.4 or 9.1), with its
parameters and permissions; a model's own is ``ClusterModel.api`` (chosen by its ``/version``). The client
belongs to the host.
"""

from ._apischema import DEFAULT_RELEASE, RELEASES, ApiSchema, Endpoint, ParamSpec, release_of, schema, schema_for

__all__ = ["DEFAULT_RELEASE", "RELEASES", "ApiSchema", "Endpoint", "ParamSpec", "release_of", "schema", "schema_for"]
