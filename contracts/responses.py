"""Which schema a provider response must match, and the check itself.

The mapping comes from the dialects' declarative route tables (the same tables that build the
fake's routes and ``/openapi.json``): ``(method, path, status) -> schema``. It works on responses
from any server — the fake or a real provider — because it looks only at the request and response.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from wanmock import schemas
from wanmock.server.dialects import Dialect, DialectRegistry, default_registry

__all__ = ["ResponseProblem", "expected_schema", "response_problems"]


@dataclass(frozen=True, slots=True)
class ResponseProblem:
    """One way a response breaks the contract."""

    method: str
    url: str
    status: int
    message: str
    schema: str | None = None
    pointer: str = ""

    def __str__(self) -> str:
        where = f" at {self.pointer}" if self.pointer else ""
        against = f" (schema {self.schema})" if self.schema else ""
        return f"{self.method} {self.url} -> {self.status}: {self.message}{where}{against}"


class _Table:
    def __init__(self, registry: DialectRegistry) -> None:
        self.entries = [(cls, route, route.pattern) for cls in registry for route in cls.routes]
        self.dialects = list(registry)

    def owner(self, path: str) -> type[Dialect] | None:
        for cls in self.dialects:
            if path.startswith(cls.path_prefixes):
                return cls
        return None


@functools.cache
def _default_table() -> _Table:
    return _Table(default_registry())


def _table(registry: DialectRegistry | None) -> _Table:
    return _default_table() if registry is None else _Table(registry)


def expected_schema(
    method: str, path: str, status: int, *, registry: DialectRegistry | None = None
) -> tuple[str | None, str | None]:
    """``(schema, problem)``: the schema the body must match, or why the status is unexpected.

    ``schema`` is ``None`` for bodiless answers (302, any answer to HEAD) and for paths no
    provider owns. HEAD is judged as the GET it mirrors (RFC 9110 §9.3.2), by status only.
    """
    if method == "HEAD":
        return None, expected_schema("GET", path, status, registry=registry)[1]
    table = _table(registry)
    path_routes = [(cls, route) for cls, route, rx in table.entries if rx.match(path)]
    for cls, route in path_routes:
        if route.method == method:
            if status in route.responses:
                return route.responses[status][0], None
            if status >= 400:
                return cls.error_schema, None  # an error the route table does not list
            return None, f"status {status} is not documented for {method} {route.path}"
    owner = path_routes[0][0] if path_routes else table.owner(path)
    if owner is None:
        return None, None
    if status == 404 and not path_routes:
        return owner.route_not_found_schema, None
    if status >= 400:
        return owner.error_schema, None
    return None, f"{method} {path} is not an endpoint of {owner.name}, yet answered {status}"


def response_problems(
    response: httpx.Response, *, registry: DialectRegistry | None = None
) -> list[ResponseProblem]:
    """Everything wrong with ``response`` against the providers' schemas (``[]`` if fine).

    The body must already be read (``response.read()`` / ``await response.aread()``).
    """
    request = response.request
    method, url, status = request.method, str(request.url), response.status_code
    path = urlsplit(url).path
    schema, problem = expected_schema(method, path, status, registry=registry)
    if problem:
        return [ResponseProblem(method, url, status, problem)]
    if schema is None:
        return []
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if media != "application/json":
        return [ResponseProblem(method, url, status,
                                f"expected an application/json body, got {media or 'none'}",
                                schema)]
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        return [ResponseProblem(method, url, status, f"body is not valid JSON: {exc}", schema)]
    return [
        ResponseProblem(method, url, status, issue.message, schema, issue.pointer)
        for issue in schemas.check(schema, body)
    ]
