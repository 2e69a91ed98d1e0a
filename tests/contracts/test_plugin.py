"""The pytest plugin, exercised the way users use it (pytester runs a real pytest session)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_fixtures_give_a_fresh_fake_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        import asyncio
        import httpx
        import pytest
        from wanmock.contracts.assertions import assert_stopped_polling_at_terminal

        SUBMIT = "/v1/models/wan-ai/wan-2-2/flash/text-to-image"

        def test_in_process(wanmock_app, wanmock_clock, wanmock_journal):
            async def go():
                transport = httpx.ASGITransport(app=wanmock_app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                             headers={"authorization": "Bearer k"}) as http:
                    rid = (await http.post(SUBMIT, json={"prompt": "x"})).json()["request_id"]
                    wanmock_clock.advance(500)
                    status = (await http.get(f"/v1/requests/{rid}/status")).json()["status"]
                    return status
            assert asyncio.run(go()) == "completed"
            assert wanmock_journal.total == 2
            assert_stopped_polling_at_terminal(wanmock_journal)

        def test_fresh_state(wanmock_journal, wanmock_app):
            assert wanmock_journal.total == 0 and len(wanmock_app.state.wanmock.state) == 0

        def test_live_server_and_faults(wanmock_base_url, wanmock_faults, wanmock_journal):
            wanmock_faults.script(["http-503"], operation="submit", retry_after=9)
            with httpx.Client(base_url=wanmock_base_url,
                              headers={"authorization": "Bearer k"}) as http:
                answer = http.post(SUBMIT, json={"prompt": "x"})
            assert answer.status_code == 503 and answer.headers["retry-after"] == "9"
            assert wanmock_base_url.startswith("http://127.0.0.1:")

        @pytest.mark.wanmock(preset="moderation", seed=5)
        def test_marker_configures(wanmock_config, wanmock_app):
            assert wanmock_config.preset == "moderation" and wanmock_config.server.seed == 5
            assert wanmock_app.state.wanmock.config.lifecycle.failure_rate == 1.0

        def test_preset_switch(wanmock_faults, wanmock_app):
            wanmock_faults.preset("outage")
            assert wanmock_app.state.wanmock.config.preset == "outage"

        @pytest.mark.smoke
        def test_real_api():
            raise AssertionError("must not run without -m smoke")
    """)
    result = pytester.runpytest_subprocess("-q", "-rs")
    result.assert_outcomes(passed=5, skipped=1)
    result.stdout.fnmatch_lines(["*opt-in with `pytest -m smoke`*"])


def test_plugin_is_registered_by_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures")
    result.stdout.fnmatch_lines(["*wanmock_server*", "*wanmock_journal*"])
