import asyncio
import io
from urllib.parse import parse_qsl

import pytest
from PIL import Image

from wanmock.server.images import ImageKey, Renderer, UrlSigner


def test_png_has_the_requested_size_and_is_deterministic() -> None:
    renderer = Renderer()
    png = renderer.render(ImageKey(seed=1, prompt="cat", width=1440, height=810))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (1440, 810)
    assert Renderer().render(ImageKey(1, "cat", 1440, 810)) == png
    assert renderer.render(ImageKey(2, "cat", 1440, 810)) != png
    assert renderer.render(ImageKey(1, "dog", 1440, 810)) != png


def test_signed_urls_expire_and_resist_tampering() -> None:
    signer = UrlSigner(b"secret", incarnation="run-1")
    query = signer.query("/files/a.png", issued=1000.0, expires=2000.0)
    params = dict(parse_qsl(query))
    assert signer.check("/files/a.png", params, now=1999.0) is None
    assert signer.check("/files/a.png", params, now=2000.0) == ("AccessDenied",
                                                                 "Request has expired")
    assert signer.check("/files/b.png", params, now=1500.0)[0] == "SignatureDoesNotMatch"  # type: ignore[index]
    longer = {**params, "X-Amz-Expires": "999999"}
    assert signer.check("/files/a.png", longer, now=1500.0)[0] == "SignatureDoesNotMatch"  # type: ignore[index]
    assert signer.check("/files/a.png", {}, now=1500.0)[0] == "AccessDenied"  # type: ignore[index]
    odd = {**params, "X-Amz-Signature": "é" * 64}  # non-ASCII: refused, not a crash
    assert signer.check("/files/a.png", odd, now=1500.0)[0] == "SignatureDoesNotMatch"  # type: ignore[index]
    digits = {**params, "X-Amz-Expires": "²"}
    assert signer.check("/files/a.png", digits, now=1500.0)[0] == "AccessDenied"  # type: ignore[index]


def test_a_url_of_another_run_is_refused_saying_so() -> None:
    """Issue 11: after a restart an old URL served the new job that reused its id."""
    before = UrlSigner(b"secret", incarnation="run-1")
    params = dict(parse_qsl(before.query("/files/a.png", issued=1000.0, expires=2000.0)))
    after = UrlSigner(b"secret", incarnation="run-2")  # even with the same key
    code, message = after.check("/files/a.png", params, now=1500.0)  # type: ignore[misc]
    assert code == "AccessDenied" and "another run of the fake" in message


def test_the_cache_is_bounded_by_bytes_and_evicts_the_least_recent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[ImageKey] = []
    original = Renderer._draw
    monkeypatch.setattr(Renderer, "_draw", staticmethod(lambda key: drawn.append(key) or
                                                         original(key)))
    keys = [ImageKey(seed, "cat", 640, 640) for seed in range(5)]
    sizes = [len(original(key)) for key in keys]
    renderer = Renderer(cache_bytes=sum(sizes[2:]))  # room for the last three
    for key in keys:
        renderer.render(key)
    assert renderer.cached_bytes == sum(sizes[2:])
    renderer.render(keys[4])  # cached: not drawn again
    renderer.render(keys[0])  # evicted: drawn again
    assert drawn == [*keys, keys[0]]
    tiny = Renderer(cache_bytes=100)  # an image bigger than the budget is served, not kept
    assert tiny.render(keys[0]).startswith(b"\x89PNG") and tiny.cached_bytes == 0


@pytest.mark.anyio
async def test_concurrent_requests_for_one_image_draw_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: list[ImageKey] = []
    original = Renderer._draw
    monkeypatch.setattr(Renderer, "_draw", staticmethod(lambda key: drawn.append(key) or
                                                         original(key)))
    renderer = Renderer()
    same, other = ImageKey(1, "cat", 1440, 1440), ImageKey(2, "cat", 1440, 1440)
    pngs = await asyncio.gather(*(renderer.render_async(k) for k in [same] * 6 + [other] * 2))
    assert sorted(drawn, key=lambda k: k.seed) == [same, other]
    assert len(set(pngs[:6])) == 1 and pngs[0] != pngs[7]
    assert renderer.render(same) == pngs[0] and len(drawn) == 2
