"""Smoke mode, tested offline against a local fake posing as the real base URL."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from wanmock import schemas
from wanmock.contracts.drivers import DRIVERS
from wanmock.contracts.smoke import cost_statement, find_key, run_smoke
from wanmock.server import Config, FakeClock, create_app
from wanmock.server.cli import main
from wanmock.server.web.serve import LiveServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("provider", sorted(DRIVERS))
async def test_smoke_against_a_fake_saves_redacted_examples(tmp_path: Path, provider: str) -> None:
    clock = FakeClock()
    app = create_app(Config().replace(server={"seed": 4}), clock=clock)

    async def wait(seconds: float) -> None:
        clock.advance(seconds)

    secret = "sk-live-0123456789abcdef"
    report = await run_smoke(provider, api_key=secret, base_url="http://127.0.0.1:8000",
                             max_jobs=1, save_dir=tmp_path, wait=wait,
                             transport=httpx.ASGITransport(app=app))
    assert report.ok, report.render()
    submits = [r for r in report.responses if r.request.method == "POST"]
    assert len([r for r in submits if r.status_code < 300]) == 1  # the job budget held
    saved = sorted(tmp_path.rglob("*.json"))
    assert saved and all(secret not in p.read_text() for p in saved)
    for path in saved:
        schema = str(path.parent.relative_to(tmp_path))
        schemas.validate(schema, json.loads(path.read_text()))  # usable as new examples


def test_cost_is_stated_and_keys_come_from_the_environment() -> None:
    assert "$0.096" in cost_statement("runcomfy", 2, "https://model-api.runcomfy.net")
    assert find_key("therouter", {"THE_ROUTER_API_KEY": " sk-1 "}) == "sk-1"
    assert find_key("runcomfy", {}) is None
    # DashScope's smoke job asks for one image (its documented default is four)
    assert "$0.025" in cost_statement("dashscope", 1, "https://dashscope-intl.aliyuncs.com")
    assert find_key("dashscope", {"DASHSCOPE_API_KEY": "sk-2"}) == "sk-2"


def test_smoke_cli_refuses_without_yes_and_without_a_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNCOMFY_API_TOKEN", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["smoke", "--provider", "runcomfy"])
    assert info.value.code == 2 and "$RUNCOMFY_API_TOKEN" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["smoke", "--provider", "runcomfy", "--api-key", "k",
              "--base-url", "http://127.0.0.1:9"])
    captured = capsys.readouterr()
    assert info.value.code == 2 and "add --yes" in captured.err
    assert "about $0.048" in captured.out  # the cost is said before anything is sent


def test_smoke_cli_with_yes_runs_against_a_live_fake(capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(Config().replace(server={"seed": 4}, lifecycle={
        "queue_delay": "fixed(0)", "run_time": "fixed(0)"}), clock=FakeClock())
    with LiveServer(app) as server:
        code = main(["smoke", "--provider", "runcomfy", "--api-key", "k", "--yes",
                     "--base-url", server.url])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SKIP  cancel follows the provider's rules" in out
