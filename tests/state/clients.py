"""Requests of one provider, written from its client facts: the first registered provider whose
status answer shows queue positions (the multi-worker test compares them)."""

from __future__ import annotations

from typing import Any

from wanmock import schemas
from wanmock.server.dialects import Dialect, Operation, default_registry


def _shows_positions(cls: type[Dialect]) -> bool:
    status = next(r for r in cls.routes if r.operation is Operation.STATUS)
    schema = status.responses[200][0]
    return schema is not None and "queue_position" in schemas.load(schema).get("properties", {})


FACTS = next(cls for cls in default_registry() if _shows_positions(cls)).client


def submit_args(prompt: str = "a cat") -> dict[str, Any]:
    """``client.request(**submit_args())``: a valid submit."""
    endpoint = FACTS.submit
    return {"method": endpoint.method, "url": endpoint.url_path(), "json": FACTS.body(prompt),
            "params": dict(endpoint.query), "headers": dict(endpoint.headers)}


def status_url(job_id: str) -> str:
    return FACTS.status.url_path(job_id)
