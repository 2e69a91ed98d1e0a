"""Real-API smoke mode: the provider checks against the live services. It spends money.

Each provider module names the environment variable of its key, its real base URL and its price
(:class:`~wanmock.server.dialects.ClientFacts`). The cost is stated before anything is sent; at
most ``max_jobs`` jobs are submitted. Real responses can be saved (the key redacted) as new
schema examples.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from wanmock.server.dialects import default_registry

from .provider import Report, Wait, verify_provider
from .responses import expected_schema

__all__ = ["KEY_ENV", "PRICE_PER_IMAGE", "REAL_BASE_URLS", "cost_statement", "find_key",
           "run_smoke", "save_examples"]

_FACTS = {cls.name: cls.client for cls in default_registry()}
#: USD per image, by provider.
PRICE_PER_IMAGE: Mapping[str, float] = {name: f.price_per_image for name, f in _FACTS.items()}
REAL_BASE_URLS: Mapping[str, str] = {name: f.real_base_url + f.base_path
                                     for name, f in _FACTS.items()}
KEY_ENV: Mapping[str, str] = {name: f.key_env for name, f in _FACTS.items()}


def find_key(provider: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The provider's API key from the environment, if set."""
    value = (os.environ if environ is None else environ).get(KEY_ENV[provider], "").strip()
    return value or None


def cost_statement(provider: str, max_jobs: int, base_url: str) -> str:
    """What the run will cost, said before it starts."""
    price = PRICE_PER_IMAGE[provider]
    return (f"smoke test of {provider} at {base_url}: submits at most {max_jobs} job(s), "
            f"about ${price * max_jobs:.3f} (${price} per image: "
            f"{_FACTS[provider].price_source or 'the provider page'})")


async def run_smoke(
    provider: str,
    *,
    api_key: str,
    base_url: str | None = None,
    max_jobs: int = 1,
    save_dir: Path | None = None,
    wait: Wait | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """The provider checks with a job budget; saves redacted responses when ``save_dir``."""
    report = await verify_provider(
        provider, base_url or REAL_BASE_URLS[provider], api_key, wait=wait,
        max_jobs=max_jobs, transport=transport, poll_interval=5.0, deadline=900.0,
    )
    if save_dir is not None:
        save_examples(report, save_dir, secrets=[api_key])
    return report


def save_examples(report: Report, directory: Path, *, secrets: list[str]) -> list[Path]:
    """Write each JSON response under ``directory/<provider>/<schema>/smoke-N.json``,
    with every secret replaced by ``<redacted>``; returns the files written."""
    written = []
    for index, response in enumerate(report.responses):
        path = urlsplit(str(response.request.url)).path
        schema, _ = expected_schema(response.request.method, path, response.status_code)
        if schema is None or "json" not in response.headers.get("content-type", ""):
            continue
        text = response.text
        for secret in secrets:
            text = text.replace(secret, "<redacted>")
        try:
            body = json.loads(text)
        except ValueError:
            continue
        target = directory / schema / f"smoke-{index:03d}-{response.status_code}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(body, indent=2) + "\n")
        written.append(target)
    return written


