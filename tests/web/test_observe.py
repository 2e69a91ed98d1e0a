"""Every metric of the real server against a scripted client: exact counts after a known sequence,
the same in ``/__admin/metrics`` and ``dashboard.json``, behind the admin API's access rules."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from tests.conftest import BASE_URL, Checked
from wanmock import schemas
from wanmock.server import FakeClock
from wanmock.server.web.dashboard import flat_numbers, metric_names, metric_value, parse_scrape
from wanmock.server.web.runtime import owner_of

pytestmark = pytest.mark.anyio

SUBMIT = "/v1/images/generations?async=true"
BODY = {"model": "wan/wan2.2-t2i-flash", "prompt": "x"}
CARELESS = owner_of("careless-key")


async def numbers(http: httpx.AsyncClient) -> dict[str, float]:
    """The dashboard's numbers, checked against the document's schema and the metrics scrape."""
    doc = (await http.get("/__admin/dashboard.json")).json()
    schemas.validate("admin/dashboard", doc)
    scrape = parse_scrape((await http.get("/__admin/metrics")).content)
    flat = flat_numbers(doc)
    for name in metric_names(doc):
        assert metric_value(scrape, name) == pytest.approx(flat[name]), name
    return flat


def nonzero(flat: dict[str, float], *heads: str) -> dict[str, float]:
    return {k: v for k, v in flat.items() if v and k.split(".")[0] in heads}


async def test_a_careless_client_shows_in_every_metric_with_exact_counts(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    # queue delay 2 s, runs of 60 s, 2 slots per key: A and B run 2..62, C waits behind them
    http = connect(make_app(), key="careless-key")
    t0 = clock.now()
    a, b, c = [(await http.post(SUBMIT, json=BODY)).json()["id"] for _ in range(3)]
    at_submit = await numbers(http)
    assert nonzero(at_submit, "jobs", "submitted", "queue") == {
        "jobs.therouter.queued": 3, "submitted.therouter": 3,
        f"queue.therouter.{CARELESS}.depth": 3}
    assert at_submit["queue_keys.therouter"] == 1 and at_submit["queue_keys.runcomfy"] == 0

    clock.advance(10)
    running = await numbers(http)
    assert nonzero(running, "jobs", "queue") == {
        "jobs.therouter.queued": 1, "jobs.therouter.running": 2,
        f"queue.therouter.{CARELESS}.depth": 1, f"queue.therouter.{CARELESS}.busy": 2}
    assert (await http.get(f"/v1/jobs/{c}/content")).status_code == 409  # before success
    assert (await http.post(f"/v1/jobs/{c}/cancel")).status_code == 200
    assert (await http.get(f"/v1/jobs/{c}")).json()["status"] == "cancelled"  # after cancel
    for _ in range(3):  # t = 10, 11, 12
        assert (await http.get(f"/v1/jobs/{a}")).json()["status"] == "in_progress"
        clock.advance(1)
    await http.post("/__admin/script", json={
        "responses": [{"fault": "http-429", "retry_after": 5}], "operation": "status"})
    assert (await http.get(f"/v1/jobs/{b}")).status_code == 429  # t = 13
    clock.advance(1)
    assert (await http.get(f"/v1/jobs/{b}")).status_code == 200  # 1 s into a 5 s Retry-After
    clock.advance(51)  # t = 65: A finished at 62
    assert (await http.get(f"/v1/jobs/{a}")).json()["status"] == "succeeded"
    clock.advance(1)
    assert (await http.get(f"/v1/jobs/{a}")).json()["status"] == "succeeded"  # after terminal
    clock.advance(4)  # t = 70
    redirect = await http.get(f"/v1/jobs/{a}/content")
    assert (await http.get(redirect.headers["location"])).status_code == 200
    assert clock.now() - t0 == 70

    flat = await numbers(http)
    assert nonzero(flat, "jobs", "submitted", "finished", "queue", "rate_limited") == {
        "jobs.therouter.succeeded": 2, "jobs.therouter.cancelled": 1, "submitted.therouter": 3,
        # the state's truth: B finished too, though its client never saw it
        "finished.therouter.succeeded": 2, "finished.therouter.cancelled": 1,
        "rate_limited.therouter": 1}
    assert nonzero(flat, "requests") == {
        "requests.therouter.submit": 3, "requests.therouter.submit.202": 3,
        "requests.therouter.status": 8, "requests.therouter.status.200": 7,
        "requests.therouter.status.429": 1,
        "requests.therouter.content": 2, "requests.therouter.content.409": 1,
        "requests.therouter.content.302": 1,
        "requests.therouter.cancel": 1, "requests.therouter.cancel.200": 1,
        "requests.therouter.download": 1, "requests.therouter.download.200": 1}
    assert nonzero(flat, "violations", "faults", "worst") == {
        "violations.therouter.poll-after-terminal": 2,  # C after its cancel, A at t = 66
        "violations.therouter.poll-after-cancel": 1,
        "violations.therouter.ignored-retry-after": 1,
        "violations.therouter.result-before-success": 1,
        "faults.therouter.http-429.running": 1,
        f"worst.therouter.{CARELESS}.total": 5,
        f"worst.therouter.{CARELESS}.poll-after-terminal": 2,
        f"worst.therouter.{CARELESS}.poll-after-cancel": 1,
        f"worst.therouter.{CARELESS}.ignored-retry-after": 1,
        f"worst.therouter.{CARELESS}.result-before-success": 1}
    hist = {k.removeprefix("hist.therouter."): v for k, v in flat.items()
            if k.startswith("hist.therouter.") and (k.endswith((".count", ".sum")) or
                                                    (".bucket." in k and v))}
    assert hist == {
        # C was shown "cancelled" after 0 polls, A "succeeded" at its 4th
        "polls_per_job.count": 2, "polls_per_job.sum": 4.0,
        "polls_per_job.bucket.0": 1, "polls_per_job.bucket.3": 1,
        # A: 10 → 11 → 12 → 65 → 66 (B's second request is a retry of the 429, not a poll)
        "poll_interval.count": 4, "poll_interval.sum": 56.0,
        "poll_interval.bucket.1": 3, "poll_interval.bucket.8": 1,
        # C seen cancelled as it was cancelled; A seen 3 s after it finished
        "notice_lag.count": 2, "notice_lag.sum": 3.0,
        "notice_lag.bucket.0": 1, "notice_lag.bucket.3": 1,
        "submit_to_download.count": 1, "submit_to_download.sum": 70.0,
        "submit_to_download.bucket.3": 1}
    assert all(v == 0 for k, v in flat.items() if ".runcomfy" in k)
    doc = (await http.get("/__admin/dashboard.json")).json()
    assert [j["job_id"] for j in doc["recent_jobs"]] == [a, b, c]


async def test_a_careful_client_breaks_no_rule(make_app: Callable[..., Starlette],
                                               connect: Callable[..., Checked],
                                               clock: FakeClock) -> None:
    http = connect(make_app())
    job = (await http.post(SUBMIT, json=BODY)).json()["id"]
    while (await http.get(f"/v1/jobs/{job}")).json()["status"] != "succeeded":
        clock.advance(5)
    flat = await numbers(http)
    assert nonzero(flat, "violations", "worst", "faults", "rate_limited") == {}
    assert flat["finished.therouter.succeeded"] == 1
    assert flat["hist.therouter.polls_per_job.count"] == 1
    assert flat["hist.therouter.notice_lag.sum"] == 3.0  # ended at 62, seen at 65


async def test_reset_zeroes_every_counter(make_app: Callable[..., Starlette],
                                          connect: Callable[..., Checked],
                                          clock: FakeClock) -> None:
    http = connect(make_app())
    job = (await http.post(SUBMIT, json=BODY)).json()["id"]
    clock.advance(100)
    await http.get(f"/v1/jobs/{job}")
    assert (await numbers(http))["finished.therouter.succeeded"] == 1
    await http.post("/__admin/reset", json={})
    flat = await numbers(http)
    assert {k: v for k, v in flat.items() if v and k != "clock.now"} == {}


def samples(text: str) -> list[tuple[str, dict[str, str]]]:
    return [(s.name, s.labels) for f in text_string_to_metric_families(text) for s in f.samples]


async def test_metrics_are_prometheus_text_labelled_by_provider_never_job_or_raw_key(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    http = connect(make_app(), key="sk-raw-key")
    job = (await http.post(SUBMIT, json=BODY)).json()["id"]
    await http.get(f"/v1/jobs/{job}")
    answer = await http.get("/__admin/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert job not in answer.text and "sk-raw-key" not in answer.text
    got = samples(answer.text)
    assert ("wanmock_requests_total", {"provider": "therouter", "endpoint": "status",
                                       "status": "200"}) in got
    assert {labels.get("key") for _, labels in got} <= {None, owner_of("sk-raw-key")}


async def test_the_page_json_and_metrics_follow_the_admin_access_rules(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked]
) -> None:
    app = make_app()
    remote = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.7", 5)),
                               base_url=BASE_URL)
    local = connect(app, key=None)
    async with remote:
        for path in ("/__admin/", "/__admin/dashboard", "/__admin/dashboard.json",
                     "/__admin/metrics"):
            assert (await remote.get(path)).status_code == 403, path
            cross = await local.get(path, headers={"origin": "http://evil.example"})
            assert cross.status_code == 403, path
            rebound = await local.get(path, headers={"host": "evil.example"})
            assert rebound.status_code == 403, path
            assert (await local.get(path)).status_code == 200, path
    page = await local.get("/__admin/")
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_with_a_token_only_the_page_is_served_without_it(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked]
) -> None:
    app = make_app(server={"admin_token": "s3cret"})
    anyone = connect(app, key=None)
    assert (await anyone.get("/__admin/")).status_code == 200  # holds no data: asks for it
    for path in ("/__admin/dashboard.json", "/__admin/metrics"):
        assert (await anyone.get(path)).status_code == 401, path
        given = await anyone.get(path, headers={"authorization": "Bearer s3cret"})
        assert given.status_code == 200, path
    wrong = await anyone.get("/__admin/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401


async def test_a_scrape_costs_the_same_with_a_long_journal(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    """The snapshot reads counters, never the journal's ring: more entries, same numbers out."""
    app = make_app(journal={"capacity": 50})
    http = connect(app)
    job = (await http.post(SUBMIT, json=BODY)).json()["id"]
    for _ in range(120):
        await http.get(f"/v1/jobs/{job}")
        clock.advance(1)
    flat = await numbers(http)
    assert flat["journal.dropped"] == 121 - 50
    assert flat["requests.therouter.status"] == 120  # counted, though the ring kept 50


def test_worst_clients_stay_ranked_as_violations_happen() -> None:
    from wanmock.server.journal import WORST_CLIENTS, Tally

    tally = Tally()
    for i in range(3 * WORST_CLIENTS):  # client i breaks i rules, in a shuffled order
        for _ in range(i):
            tally.blame("p", f"{i:08x}", "poll-after-terminal")
    for i in reversed(range(3 * WORST_CLIENTS)):
        tally.blame("p", f"{i:08x}", "poll-after-cancel")
    want = {("p", f"{i:08x}"): i + 1 for i in range(2 * WORST_CLIENTS, 3 * WORST_CLIENTS)}
    assert tally.worst == want
    # a client outside the ranking climbs in once it passes the least inside
    low = ("p", f"{2 * WORST_CLIENTS:08x}")
    for _ in range(want[low] + 1):
        tally.blame("p", "deadbeef", "ignored-retry-after")
    assert ("p", "deadbeef") in tally.worst and low not in tally.worst
    assert len(tally.worst) == WORST_CLIENTS


def test_clients_counted_one_by_one_stay_bounded_and_the_worst_are_kept() -> None:
    """Keys without number each breaking one rule (a hostile fleet) cost at most MAX_CLIENTS
    counters; the worst clients, known before, keep their counts and their ranking."""
    from wanmock.server.journal import MAX_CLIENTS, WORST_CLIENTS, Tally

    tally = Tally()
    for i in range(WORST_CLIENTS):
        for _ in range(5):
            tally.blame("p", f"bad{i}", "poll-after-terminal")
    worst = dict(tally.worst)
    for i in range(MAX_CLIENTS + 500):
        tally.blame("p", f"k{i}", "poll-after-cancel")
    assert len(tally.clients) == MAX_CLIENTS
    assert tally.forgotten_clients == WORST_CLIENTS + 500
    assert tally.worst == worst  # one violation each never outranks five
    assert all(who in tally.clients for who in worst)


def test_a_scrape_does_bounded_work_with_100k_jobs_and_a_full_journal() -> None:
    """Counted in function calls, not timed: one snapshot of 100k jobs (every phase, a journal
    past its capacity) does about what one of 1k jobs does; a scan of the jobs would not."""
    from collections import Counter

    from wanmock.server.lifecycle import state_at
    from wanmock.server.state import at_once
    from wanmock.server.web.observe import snapshot

    from .fleet import calls, fleet

    work = {}
    for jobs in (1_000, 100_000):
        rt = fleet(jobs)
        journal = rt.journal
        assert journal.dropped_entries > 0 and journal.dropped_jobs > 0  # at capacity
        at_once(snapshot(rt))  # settles the queues once (amortised work, as at every scrape)
        work[jobs] = calls(lambda rt=rt: at_once(snapshot(rt)))
        snap, now = at_once(snapshot(rt))
        records = [r for r, _ in rt.state._jobs.values()]  # type: ignore[attr-defined]
        for provider, metrics in snap.providers.items():
            scanned = Counter(str(state_at(r, now).phase) for r in records
                              if r.provider == provider)
            assert {k: v for k, v in metrics.jobs_by_state.items() if v} == scanned
    assert work[100_000] < 1.5 * work[1_000], work
    scan = calls(lambda: Counter(state_at(r, now).phase for r in records))
    assert scan > 50 * work[100_000]  # what the bound above would catch


async def test_the_readme_names_every_metric_the_server_exports(http: Checked) -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Dashboard and metrics\n", 1)[1].split("\n## ", 1)[0]
    listed = {line.split("`")[1].split("{")[0] for line in section.splitlines()
              if line.startswith("- `wanmock_")}
    exported = {f.name + ("_total" if f.type == "counter" else "")
                for f in text_string_to_metric_families((await http.get("/__admin/metrics")).text)}
    assert listed == exported
    assert (Path(__file__).parents[2] / "docs" / "dashboard.png").read_bytes()[:4] == b"\x89PNG"


async def test_a_queue_shared_by_every_key_is_labelled_shared(
    make_app: Callable[..., Starlette], connect: Callable[..., Checked], clock: FakeClock
) -> None:
    app = make_app(lifecycle={"queue_scope": "provider", "concurrency": 1})
    for key in ("k1", "k2", "k3"):
        await connect(app, key=key).post(SUBMIT, json=BODY)
    clock.advance(10)
    flat = await numbers(connect(app))
    assert nonzero(flat, "queue", "queue_keys") == {
        "queue.therouter.shared.depth": 2, "queue.therouter.shared.busy": 1,
        "queue_keys.therouter": 1}
