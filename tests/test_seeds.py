"""The providers' own example calls (from ``shared/seeds/``) run unchanged but for the host.

These need a real socket: the fake runs under uvicorn on a free loopback port, on a fake clock.
The TheRouter loop's ``sleep 5`` is a shell function that advances the fake clock 5 simulated
seconds through the admin API, so the test never sleeps for real.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from wanmock.contracts.responses import response_problems
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.web.serve import LiveServer

SEEDS = Path(__file__).parent / "seeds"
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

ADVANCE = (
    'curl -s -X POST "$WANMOCK_BASE/__admin/clock/advance" '
    '-H "Content-Type: application/json" -d "{\\"seconds\\": $1}" > /dev/null'
)


@pytest.fixture
def live() -> Iterator[tuple[str, FakeClock]]:
    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 99}), clock=clock)
    with LiveServer(app) as server:
        yield server.url, clock


def run(script: str, base: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], "WANMOCK_BASE": base, **env},
    )


def checked(url: str, method: str = "GET", **kw: object) -> httpx.Response:
    response = httpx.request(method, url, **kw)  # type: ignore[arg-type]
    assert not response_problems(response)
    return response


def test_therouter_polling_loop_prints_a_downloadable_png(live: tuple[str, FakeClock]) -> None:
    base, clock = live
    script = (SEEDS / "therouter_async.sh").read_text()
    script = script.replace("https://api.therouter.ai", "$WANMOCK_BASE")
    result = run(f"sleep() {{ {ADVANCE}; }}\n{script}", base, THE_ROUTER_API_KEY="sk-test")
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("submitted: img_")
    statuses = [line.removeprefix("status: ") for line in lines if line.startswith("status: ")]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"
    assert set(statuses) <= {"queued", "in_progress", "succeeded"}
    assert 30 / 5 <= len(statuses) <= 190 / 5  # the documented 30-180 s, polled every 5 s
    image = checked(lines[-1])
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (1024, 1024)
    job = checked(f"{base}/v1/jobs/{lines[0].split()[-1]}",
                  headers={"authorization": "Bearer sk-test"}).json()
    assert job["status"] == "succeeded" and clock.now() > job["created_at"]


def test_runcomfy_curl_calls_work_unchanged(live: tuple[str, FakeClock]) -> None:
    base, clock = live
    functions = (SEEDS / "runcomfy_calls.sh").read_text()
    functions = functions.replace("https://model-api.runcomfy.net", "$WANMOCK_BASE")
    functions = functions.replace("<token>", "$RUNCOMFY_API_TOKEN")

    def call(name: str, request_id: str = "") -> dict[str, object]:
        script = functions.replace("{request_id}", request_id) + f"\n{name}\n"
        result = run(script, base, RUNCOMFY_API_TOKEN="rc-test")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    submitted = call("submit")
    request_id = str(submitted["request_id"])
    assert submitted["status_url"] == f"{base}/v1/requests/{request_id}/status"
    assert call("status", request_id)["status"] == "in_queue"
    clock.advance(200)
    assert call("status", request_id)["status"] == "completed"
    result = call("result", request_id)
    assert result["status"] == "succeeded"
    image = checked(result["output"]["image"])  # type: ignore[index]
    assert Image.open(io.BytesIO(image.content)).size == (1440, 810)  # the default 16:9
    assert call("cancel", request_id)["outcome"] == "not_cancellable"
    queued = str(call("submit")["request_id"])
    assert call("cancel", queued) == {"request_id": queued, "status": "cancelled",
                                      "outcome": "cancelled"}
    for request in (call("status", queued), checked(
            f"{base}/v1/requests/{queued}/status",
            headers={"authorization": "Bearer rc-test"}).json()):
        assert request["status"] == "cancelled"
