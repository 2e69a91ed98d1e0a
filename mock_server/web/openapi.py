"""``GET /openapi.json``: an OpenAPI 3.1 document built from the dialects' route tables.

Component schemas are the files in ``schemas/`` (OpenAPI 3.1 uses JSON Schema 2020-12), so the
document, the fake and the contract checks all read the same contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wanmock import schemas

from ..dialects import Dialect
from ..dialects.base import compile_path, template

__all__ = ["component_name", "openapi_document"]


def component_name(schema: str) -> str:
    """``therouter/job`` -> ``therouter.job`` (OpenAPI component keys cannot hold ``/``)."""
    return schema.replace("/", ".")


def openapi_document(given: Iterable[Dialect]) -> dict[str, Any]:
    """The whole API of the given dialects."""
    dialects = list(given)
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for dialect in dialects:
        for route in dialect.routes:
            path = template(route.path)
            operation: dict[str, Any] = {
                "operationId": f"{dialect.name}_{route.operation}_{route.method.lower()}",
                "summary": route.summary,
                "tags": [dialect.title],
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": name, "in": "path", "required": True,
                     "schema": dict(route.path_params.get(name, {"type": "string"}))}
                    for name in compile_path(route.path)[1]
                ]
                + [
                    {"name": name, "in": "query", "required": False, "schema": dict(schema),
                     "description": text}
                    for name, (schema, text) in route.query.items()
                ]
                + [
                    {"name": name, "in": "header", "required": False, "schema": dict(schema),
                     "description": text}
                    for name, (schema, text) in route.headers.items()
                ],
                "responses": {},
            }
            if route.request_schema:
                used.add(route.request_schema)
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(route.request_schema)}},
                }
            for status, (schema, text) in sorted(route.responses.items()):
                response: dict[str, Any] = {"description": text}
                if schema:
                    used.add(schema)
                    response["content"] = {"application/json": {"schema": _ref(schema)}}
                operation["responses"][str(status)] = response
            paths.setdefault(path, {})[route.method.lower()] = operation
    components = {}
    for name in sorted(used):
        document = schemas.load(name)
        document.pop("$schema", None)
        document.pop("$id", None)
        components[component_name(name)] = document
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wanmock: Wan 2.2 T2I Flash providers (fake)",
            "version": "0.1.0",
            "description": "The async image-job APIs of "
                           + ", ".join(d.title for d in dialects) + ", as served by the fake.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{component_name(schema)}"}
