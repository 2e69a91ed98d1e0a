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


def test_live_clock_modes_markers_and_teardown_checks(pytester: pytest.Pytester) -> None:
    """Both documented clock modes (autojump by default, a scaled real clock), the manual one;
    bad markers fail at setup and unchecked fixtures at teardown, each with the reason."""
    pytester.makepyfile(test_clock="""
        import time
        import httpx
        import openai
        import pytest
        from wanmock.server import FakeClock, RealClock

        SHORT = {"queue_delay": "fixed(0)", "run_time": "fixed(30)"}

        def generate(base_url):
            client = openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0)
            with client:  # sync mode: the request waits on the fake's clock for the job
                return client.images.generate(model="wan/wan2.2-t2i-flash", prompt="a fox")

        @pytest.mark.wanmock(lifecycle=SHORT)
        def test_openai_sync_mode_on_autojump(wanmock_base_url, wanmock_clock):
            started, real = wanmock_clock.now(), time.monotonic()
            answer = generate(wanmock_base_url)
            assert answer.data[0].url.startswith(wanmock_base_url + "/files/")
            assert isinstance(wanmock_clock, FakeClock)
            assert wanmock_clock.now() - started == 30
            assert time.monotonic() - real < 5

        @pytest.mark.wanmock(server={"time_scale": 1000}, lifecycle=SHORT)
        def test_openai_sync_mode_on_a_scaled_clock(wanmock_base_url, wanmock_clock):
            assert isinstance(wanmock_clock, RealClock) and wanmock_clock.scale == 1000
            real = time.monotonic()
            generate(wanmock_base_url)
            assert 0.025 < time.monotonic() - real < 5

        def test_a_poller_that_really_sleeps_sees_its_job_progress(wanmock_base_url):
            with httpx.Client(base_url=wanmock_base_url,
                              headers={"authorization": "Bearer k"}) as http:
                job = http.post("/v1/images/generations", params={"async": "true"},
                                json={"model": "wan/wan2.2-t2i-flash", "prompt": "x"}).json()
                for _ in range(100):
                    if job["status"] == "succeeded":
                        break
                    time.sleep(0.05)  # the user's real sleep: the server is idle meanwhile
                    job = http.get(f"/v1/jobs/{job['id']}").json()
            assert job["status"] == "succeeded"

        @pytest.mark.wanmock(clock="manual")
        def test_manual_clock_moves_only_when_told(wanmock_base_url, wanmock_clock):
            with httpx.Client(base_url=wanmock_base_url,
                              headers={"authorization": "Bearer k"}) as http:
                job = http.post("/v1/images/generations", params={"async": "true"},
                                json={"model": "wan/wan2.2-t2i-flash", "prompt": "x"}).json()
                assert http.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
                wanmock_clock.advance(500)
                assert http.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"
    """, test_checks="""
        import asyncio
        import httpx
        import pytest

        SUBMIT = "/v1/models/wan-ai/wan-2-2/flash/text-to-image"

        def submit(app, times):
            async def go():
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                             headers={"authorization": "Bearer k"}) as http:
                    for _ in range(times):
                        await http.post(SUBMIT, json={"prompt": "x"})
            asyncio.run(go())

        @pytest.mark.wanmock(sever={"seed": 1})
        def test_typo_in_a_key(wanmock_app):
            pass

        @pytest.mark.wanmock(clock="fake")
        def test_unknown_clock(wanmock_clock):
            pass

        @pytest.mark.wanmock(lifecycle={"run_time": "uniform(1)"})
        def test_bad_config_value(wanmock_config):
            pass

        def test_scripted_fault_never_served(wanmock_faults, wanmock_app):
            wanmock_faults.script(["http-503"], operation="cancel")
            submit(wanmock_app, 1)

        @pytest.mark.wanmock(journal={"max_jobs": 1})
        def test_journal_overflow(wanmock_app):
            submit(wanmock_app, 2)

        @pytest.mark.wanmock(strict=False, journal={"max_jobs": 1})
        def test_checks_switched_off(wanmock_faults, wanmock_app):
            wanmock_faults.script(["http-503"], operation="cancel")
            submit(wanmock_app, 2)

        def test_a_failing_test_gets_one_failure_only(wanmock_faults):
            wanmock_faults.script(["http-503"])
            assert False, "the test's own failure"
    """)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    # Teardown errors count their test as passed too: 4 clock tests + 3 checked ones.
    result.assert_outcomes(passed=7, failed=1, errors=5)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_typo_in_a_key*",
        "*@pytest.mark.wanmock: unknown key 'sever'; did you mean 'server'? valid: *",
        "*ERROR at setup of test_unknown_clock*",
        "*clock='fake' is not a clock; valid: autojump, manual, real*",
        "*ERROR at setup of test_bad_config_value*",
        "*lifecycle.run_time*",
        "*ERROR at teardown of test_scripted_fault_never_served*",
        "*scripted faults were never served (*:cancel: http-503)*",
        "*ERROR at teardown of test_journal_overflow*",
        "*the journal overflowed: 1 job and 0 key summaries were dropped*",
    ])
    assert "ERROR at teardown of test_a_failing_test" not in result.stdout.str()


def test_plugin_is_registered_by_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures")
    result.stdout.fnmatch_lines(["*wanmock_server*", "*wanmock_journal*"])


def test_journal_reads_wait_for_the_live_server_to_journal(pytester: pytest.Pytester) -> None:
    """The live server journals a request after sending its answer: a read of the journal
    fixture waits until every answered request is in it (an assertion on the line after a
    client's bad poll must see that poll), but not for requests parked on the fake clock."""
    pytester.makepyfile(test_race="""
        import asyncio
        import threading
        import httpx
        import pytest
        from wanmock.contracts import assertions
        from wanmock.server.web import edge

        SHORT = {"queue_delay": "fixed(0)", "run_time": "fixed(30)"}
        SUBMIT = "/v1/images/generations"
        BODY = {"model": "wan/wan2.2-t2i-flash", "prompt": "x"}

        @pytest.fixture
        def hold(monkeypatch):
            # Journaling waits for this event: the answer is out, the journal lags behind.
            held = threading.Event()
            held.set()
            journal = edge.Edge._journal

            async def late(self, *args, **kwargs):
                await asyncio.to_thread(held.wait, 10)
                await journal(self, *args, **kwargs)

            monkeypatch.setattr(edge.Edge, "_journal", late)
            return held

        def read_in_a_thread(read):
            seen = []
            reader = threading.Thread(target=lambda: seen.append(read()))
            reader.start()
            reader.join(0.1)
            return reader, seen

        @pytest.mark.wanmock(clock="manual", lifecycle=SHORT)
        def test_poll_after_terminal_is_seen(wanmock_base_url, wanmock_journal, wanmock_clock,
                                             hold):
            with httpx.Client(base_url=wanmock_base_url,
                              headers={"authorization": "Bearer k"}) as http:
                job = http.post(SUBMIT, params={"async": "true"}, json=BODY).json()["id"]
                wanmock_clock.advance(40)
                assert http.get(f"/v1/jobs/{job}").json()["status"] == "succeeded"
                hold.clear()
                http.get(f"/v1/jobs/{job}")  # the bug: a poll after the terminal answer

            def judge():
                try:
                    assertions.assert_stopped_polling_at_terminal(wanmock_journal, job)
                except AssertionError:
                    return "caught"
                return "passed"

            reader, seen = read_in_a_thread(judge)
            assert reader.is_alive() and not seen, "the read did not wait for the journal"
            hold.set()
            reader.join(10)
            assert seen == ["caught"]

        @pytest.mark.wanmock(clock="manual", lifecycle=SHORT)
        def test_a_request_parked_on_the_clock_is_not_waited_for(
                wanmock_base_url, wanmock_journal, wanmock_clock, wanmock_app):
            answers = []

            def sync_mode():  # TheRouter's sync mode: the answer waits for the job
                with httpx.Client(base_url=wanmock_base_url,
                                  headers={"authorization": "Bearer k"}) as http:
                    answers.append(http.post(SUBMIT, json=BODY).status_code)

            client = threading.Thread(target=sync_mode)
            client.start()
            rt = wanmock_app.state.wanmock
            for _ in range(10_000):
                if rt.parks:
                    break
                client.join(0.001)
            assert rt.parks == 1 and rt.settled
            reader, seen = read_in_a_thread(lambda: wanmock_journal.total)
            reader.join(2)  # less than the reads' patience (5 s)
            assert seen == [0]
            wanmock_clock.advance(40)
            client.join(10)
            assert answers == [200] and wanmock_journal.total == 1
    """)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_teardown_checks_excuse_tests_that_stopped_early(pytester: pytest.Pytester) -> None:
    """A test skipped or xfailed after scripting a fault, or whose other fixture failed at
    setup, reports that outcome once: no second verdict from the teardown checks."""
    pytester.makepyfile(test_early="""
        import pytest

        @pytest.fixture
        def broken(wanmock_faults):
            wanmock_faults.script(["http-503"])
            raise RuntimeError("fixture broke")

        def test_skipped_after_scripting(wanmock_faults):
            wanmock_faults.script(["http-503"], provider="therouter", operation="status")
            pytest.skip("optional dependency missing")

        @pytest.mark.xfail(reason="known bug", strict=False)
        def test_xfailed_after_scripting(wanmock_faults):
            wanmock_faults.script(["http-503"], provider="therouter", operation="status")
            raise RuntimeError("the known bug, before it polls")

        def test_other_fixture_fails_at_setup(wanmock_faults, broken):
            pass
    """)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-rsxX")
    result.assert_outcomes(skipped=1, xfailed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_other_fixture_fails_at_setup*"])
    out = result.stdout.str()
    assert "ERROR at teardown of test_skipped" not in out
    assert "ERROR at teardown of test_xfailed" not in out
    assert "ERROR at teardown of test_other_fixture" not in out


def test_markers_merge_by_level_and_a_seed_given_twice_is_refused(
        pytester: pytest.Pytester) -> None:
    """Markers at class and function level merge, the closest winning per key; ``seed`` and
    ``server={"seed": ...}`` that disagree fail at setup naming both."""
    pytester.makepyfile(test_markers="""
        import pytest

        @pytest.mark.wanmock(lifecycle={"run_time": "fixed(7)"}, seed=2)
        class TestPreset:
            @pytest.mark.wanmock(seed=4)
            def test_class_section_kept_seed_overridden(self, wanmock_config):
                assert wanmock_config.server.seed == 4
                assert wanmock_config.lifecycle.run_time.value == 7

            def test_class_marker_alone(self, wanmock_config):
                assert wanmock_config.server.seed == 2

        @pytest.mark.wanmock(server={"seed": 5}, seed=3)
        def test_seed_conflict(wanmock_config):
            pass

        @pytest.mark.wanmock(server={"seed": 5}, seed=5)
        def test_seed_given_twice_alike(wanmock_config):
            assert wanmock_config.server.seed == 5
    """)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_seed_conflict*",
        "*seed=3 and server={'seed': 5} disagree; give the seed once*"])
