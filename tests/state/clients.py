"""Requests of one provider, written from its client facts (any registered provider will do)."""

from __future__ import annotations

from typing import Any

from wanmock.server.dialects import default_registry

FACTS = sorted(default_registry(), key=lambda cls: cls.name)[0].client


def submit_args(prompt: str = "a cat") -> dict[str, Any]:
    """``client.request(**submit_args())``: a valid submit."""
    endpoint = FACTS.submit
    return {"method": endpoint.method, "url": endpoint.url_path(), "json": FACTS.body(prompt),
            "params": dict(endpoint.query), "headers": dict(endpoint.headers)}


def status_url(job_id: str) -> str:
    return FACTS.status.url_path(job_id)
