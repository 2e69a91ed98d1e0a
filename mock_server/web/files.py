"""``GET /files/{provider}/{job_id}/{index}.png``: the artifacts, behind pre-signed-style URLs.

No bearer key is needed (like S3 pre-signed URLs and public CDN links); the signature and its
expiry are checked first, and refusals are S3-shaped XML.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import ApiError
from ..images import ImageKey, s3_error_xml
from ..vocab import Operation, Phase
from .faulting import guarded
from .runtime import Runtime

__all__ = ["download"]


async def download(rt: Runtime, request: Request) -> Response:
    """Serve one image of a succeeded job (under the fault injector, as ``download``)."""
    params = request.path_params

    def render_error(error: ApiError) -> Response:
        code = "SlowDown" if error.kind == "rate_limited" else "ServiceUnavailable"
        status = getattr(error, "status", 503)
        return _xml(status, code, error.message)

    return await guarded(rt, request, provider=params["provider"],
                         operation=Operation.DOWNLOAD, job_id=params["job_id"],
                         produce=lambda: _serve(rt, request), render_error=render_error)


async def _serve(rt: Runtime, request: Request) -> Response:
    params = request.path_params
    path = request.url.path
    refusal = rt.signer.check(path, dict(request.query_params), now=rt.clock.now())
    if refusal is not None:
        return _xml(403, *refusal)
    record = rt.engine.store.get(params["job_id"])
    index = int(params["index"])
    if record is None or record.provider != params["provider"] or index >= record.request.n:
        return _xml(404, "NoSuchKey", "The specified key does not exist.")
    view = rt.engine.view(record, rt.clock.now())
    if view.phase is not Phase.SUCCEEDED:
        return _xml(404, "NoSuchKey", "The specified key does not exist.")
    req = record.request
    png = await rt.renderer.render_async(ImageKey(record.seed, req.prompt, req.width, req.height,
                                                  index))
    return Response(png, 200, {"cache-control": "private, max-age=604800"}, "image/png")


def _xml(status: int, code: str, message: str) -> Response:
    return Response(s3_error_xml(code, message), status, media_type="application/xml")
