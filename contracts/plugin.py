"""The wanmock pytest plugin (entry point ``pytest11: wanmock``): a fake per test.

Fixtures (all fresh per test):

* ``wanmock_clock`` — the fake's clock: a :class:`~wanmock.server.FakeClock` (``advance(60)``),
  or a scaled :class:`~wanmock.server.RealClock` with ``clock="real"``.
* ``wanmock_config`` — the :class:`~wanmock.server.Config`, set with the marker (below).
* ``wanmock_app`` — the in-process ASGI app (use with ``httpx.ASGITransport``).
* ``wanmock_server`` — the same app on a real uvicorn socket; ``wanmock_server.url``.
* ``wanmock_base_url`` — that URL, for clients that take a base URL.
* ``wanmock_journal`` — what clients did; judge it with :mod:`wanmock.contracts.assertions`.
* ``wanmock_faults`` — script the next responses: ``wanmock_faults.script(["http-503"])``.

The marker ``@pytest.mark.wanmock(...)`` takes ``preset``, ``seed``, any config section
(``lifecycle={...}``, ``server={...}``, ``faults={...}``, ...) and:

* ``clock`` — how simulated time moves while the live server runs:

  - ``"autojump"`` (the default): a fake clock that advances when the client waits. Once the
    server has been quiet for ``autojump_threshold`` real seconds (no request being worked on;
    those parked on the clock — TheRouter's sync mode, injected delays — do not count), the
    clock jumps to the earliest parked deadline or the next phase change of an unfinished job.
    ``OpenAI(base_url=wanmock_base_url + "/v1").images.generate(...)`` returns at once, and a
    poller that really sleeps sees its job progress at every poll.
  - ``"manual"``: a fake clock that moves only by ``wanmock_clock.advance`` (step-by-step
    tests; a request parked on the clock waits until you advance it).
  - ``"real"``: a real clock sped up by ``server={"time_scale": N}`` (the default when
    ``time_scale`` is given): ``time_scale=1000`` turns a 60 s job into 60 ms.

* ``autojump_threshold`` — real seconds of quiet before a jump (default 0.02).
* ``strict`` — teardown checks (default ``True``): a test fails if a fault it scripted was never
  served, if the journal dropped evidence (more jobs or keys than ``journal.max_jobs`` /
  ``max_keys``: verdicts would be incomplete), or if the fake logged an internal error. The
  journal's ring buffer may overflow freely: nothing is judged from it. A test that failed,
  errored at setup, was skipped or xfailed is not checked (its own outcome is the verdict).

Markers at several levels (module ``pytestmark``, class, function) merge, the closest winning
per key: a class's ``lifecycle={...}`` applies to its method marked ``wanmock(seed=1)``, and a
method's own ``lifecycle`` replaces the class's whole section. An unknown marker key, a bad
value, or ``seed`` and ``server={"seed": ...}`` disagreeing, is an error at the test's setup
naming it and the valid ones. Tests marked ``smoke`` talk to the real providers: they run only
when selected (``pytest -m smoke``) and the provider's key is set.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:  # imported lazily: the plugin loads on every pytest run
    from starlette.applications import Starlette

    from wanmock.server import Clock, Config
    from wanmock.server.journal import Journal
    from wanmock.server.web.serve import LiveServer

    from .autojump import TrackedServer

__all__ = ["FaultScripter", "MarkerOptions"]

_CLOCKS = ("autojump", "manual", "real")
_OWN_KEYS = ("preset", "seed", "clock", "autojump_threshold", "strict")
_failed = pytest.StashKey[bool]()
#: A live server (another thread) answers this test's requests: journal reads settle first.
_live = pytest.StashKey[bool]()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MarkerOptions:
    """What ``@pytest.mark.wanmock`` says beyond the fake's config."""

    #: ``autojump``, ``manual`` or ``real`` (see the module docstring).
    clock: str = "autojump"
    #: Real seconds the server must stay quiet before an autojump.
    autojump_threshold: float = 0.02
    #: Teardown checks: unserved scripted faults, dropped journal evidence, internal errors.
    strict: bool = True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wanmock(preset=None, seed=0, clock='autojump', autojump_threshold=0.02, "
                   "strict=True, **sections): configure the wanmock fake (see "
                   "wanmock.contracts.plugin)")
    config.addinivalue_line(
        "markers", "smoke: talks to the real provider APIs (opt-in: pytest -m smoke, needs a key)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "smoke" in (config.option.markexpr or ""):
        return
    from wanmock.server.dialects import default_registry

    keys = " / ".join(f"{cls.client.key_env} (${cls.client.price_per_image:g}/image)"
                      for cls in default_registry())
    skip = pytest.mark.skip(reason=f"real-API smoke test: opt-in with `pytest -m smoke` and {keys}")
    for item in items:
        if item.get_closest_marker("smoke"):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember a test that failed, errored at setup, was skipped or xfailed: its teardown
    checks then stay quiet (one failure is enough, and a test that stopped early did not get
    to serve its scripted faults)."""
    report = yield
    if report.when in ("setup", "call") and (report.failed or report.skipped):
        item.stash[_failed] = True
    return report


def _marker(request: pytest.FixtureRequest) -> tuple[Config, MarkerOptions]:
    """The marker's config and options, or a setup error naming the bad key or value."""
    from wanmock.server import Config
    from wanmock.server.errors import ConfigError
    from wanmock.server.vocab import suggest

    # Every level's marker (module, class, function), the closest winning per key.
    options: dict[str, Any] = {}
    for marker in request.node.iter_markers("wanmock"):
        if marker.args:
            pytest.fail(f"@pytest.mark.wanmock takes keywords only, got {marker.args!r}",
                        pytrace=False)
        for key, value in marker.kwargs.items():
            options.setdefault(key, value)
    sections = {f.name for f in dataclasses.fields(Config) if f.name != "preset"}
    valid = set(_OWN_KEYS) | sections
    for key in options:
        if key not in valid:
            pytest.fail(f"@pytest.mark.wanmock: unknown key {key!r}; {suggest(key, valid)}",
                        pytrace=False)
    preset = options.pop("preset", None)
    server = dict(options.pop("server", {}) or {})
    if "seed" in options and "seed" in server and options["seed"] != server["seed"]:
        pytest.fail(f"@pytest.mark.wanmock: seed={options['seed']!r} and "
                    f"server={{'seed': {server['seed']!r}}} disagree; give the seed once",
                    pytrace=False)
    server.setdefault("seed", options.pop("seed", 0))
    clock = options.pop("clock", "real" if "time_scale" in server else "autojump")
    threshold = options.pop("autojump_threshold", 0.02)
    strict = options.pop("strict", True)
    if clock not in _CLOCKS:
        pytest.fail(f"@pytest.mark.wanmock: clock={clock!r} is not a clock; "
                    f"{suggest(str(clock), _CLOCKS)}", pytrace=False)
    if clock != "real" and "time_scale" in server:
        pytest.fail(f"@pytest.mark.wanmock: server.time_scale applies to clock='real' only, "
                    f"not clock={clock!r}", pytrace=False)
    if (not isinstance(threshold, int | float) or isinstance(threshold, bool)
            or not threshold >= 0):
        pytest.fail(f"@pytest.mark.wanmock: autojump_threshold must be a number of seconds "
                    f">= 0, got {threshold!r}", pytrace=False)
    if not isinstance(strict, bool):
        pytest.fail(f"@pytest.mark.wanmock: strict must be True or False, got {strict!r}",
                    pytrace=False)
    try:
        config = Config().with_preset(preset) if preset else Config()
        config = config.replace(server=server, **options)
    except ConfigError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # failed outside the ``except``: the report shows the reason, not a chain
        pytest.fail(f"@pytest.mark.wanmock: {problem}", pytrace=False)
    return config, MarkerOptions(clock=clock, autojump_threshold=float(threshold),
                                 strict=strict)


@pytest.fixture
def wanmock_options(request: pytest.FixtureRequest) -> MarkerOptions:
    """The clock mode and checks the marker chose (see :class:`MarkerOptions`)."""
    return _marker(request)[1]


@pytest.fixture
def wanmock_config(request: pytest.FixtureRequest) -> Config:
    """The fake's config; set with ``@pytest.mark.wanmock(preset=..., seed=..., ...)``."""
    return _marker(request)[0]


@pytest.fixture
def wanmock_clock(wanmock_config: Config, wanmock_options: MarkerOptions) -> Clock:
    """The fake's clock: a ``FakeClock`` (``wanmock_clock.advance(60)``), or with
    ``clock="real"`` a ``RealClock`` at ``server.time_scale``."""
    from wanmock.server import FakeClock, RealClock

    if wanmock_options.clock == "real":
        return RealClock(wanmock_config.server.time_scale)
    return FakeClock()


class _Errors(logging.Handler):
    """Collects the fake's internal errors (logged on ``wanmock``) during one test."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def wanmock_app(request: pytest.FixtureRequest, wanmock_config: Config, wanmock_clock: Clock,
                wanmock_options: MarkerOptions) -> Iterator[Starlette]:
    """The fake as an in-process ASGI app (for ``httpx.ASGITransport``); checks itself at
    teardown (see ``strict`` in the module docstring)."""
    from wanmock.server import create_app

    app = create_app(wanmock_config, clock=wanmock_clock)
    errors = _Errors()
    logger = logging.getLogger("wanmock")
    logger.addHandler(errors)
    try:
        yield app
    finally:
        logger.removeHandler(errors)
    if wanmock_options.strict and not request.node.stash.get(_failed, False):
        problems = _teardown_problems(app, errors.messages)
        if problems:
            pytest.fail("wanmock: " + "\n".join(problems) + "\n(to skip these checks: "
                        "@pytest.mark.wanmock(strict=False))", pytrace=False)


def _teardown_problems(app: Starlette, errors: list[str]) -> list[str]:
    rt = app.state.wanmock
    problems = []
    from wanmock.server.state import at_once

    scripted = at_once(rt.state.scripted())
    if scripted:
        listed = "; ".join(f"{where}: {', '.join(faults)}" for where, faults in scripted.items())
        problems.append(f"scripted faults were never served ({listed}): no request reached "
                        "that endpoint, so the test did not exercise them")
    journal = rt.journal
    if journal.dropped_jobs or journal.dropped_keys:
        problems.append(
            f"the journal overflowed: {journal.dropped_jobs} job and {journal.dropped_keys} key "
            f"summaries were dropped (journal.max_jobs = {journal.max_jobs}, max_keys = "
            f"{journal.max_keys}), so verdicts on this test's clients are incomplete; raise "
            "them with @pytest.mark.wanmock(journal={...})")
    problems.extend(f"the fake logged an internal error (a wanmock bug): {message}"
                    for message in errors)
    return problems


@pytest.fixture
def wanmock_server(
    request: pytest.FixtureRequest, wanmock_app: Starlette, wanmock_clock: Clock,
    wanmock_options: MarkerOptions,
) -> Iterator[LiveServer | TrackedServer]:
    """The fake on a real uvicorn socket (free loopback port), stopped after the test; its
    clock runs as the marker's ``clock`` says (autojump by default)."""
    from wanmock.server import FakeClock
    from wanmock.server.web.serve import LiveServer

    from .autojump import Autojump, TrackedServer, Watched, next_job_change

    request.node.stash[_live] = True
    if not isinstance(wanmock_clock, FakeClock):
        with LiveServer(wanmock_app) as live:
            yield live
        return
    with TrackedServer(Watched(wanmock_app, wanmock_clock)) as tracked:
        if wanmock_options.clock != "autojump":
            yield tracked
            return
        with Autojump(tracked, threshold=wanmock_options.autojump_threshold,
                      also=lambda now: next_job_change(wanmock_app, now)):
            yield tracked


@pytest.fixture
def wanmock_base_url(wanmock_server: LiveServer | TrackedServer) -> str:
    """Base URL of the live fake, for clients that take one."""
    return wanmock_server.url


class _SettledJournal:
    """The fake's journal, read only once the live server has journaled every request it has
    received (the edge journals an answer after sending it, so a client can hold its answer
    before the request is in the journal; an assertion on the next line would miss it).
    Requests waiting on the fake clock are not waited for. In process (no live server) each
    request is journaled before the client has its answer: nothing to wait for."""

    _PATIENCE = 5.0  # real seconds; only a request stuck mid-work could take this long

    def __init__(self, app: Starlette, node: pytest.Item) -> None:
        object.__setattr__(self, "_rt", app.state.wanmock)
        object.__setattr__(self, "_node", node)

    def _settle(self) -> None:
        import time

        rt = self._rt
        if rt.settled or not self._node.stash.get(_live, False):
            return
        deadline = time.monotonic() + self._PATIENCE
        while not rt.settled and time.monotonic() < deadline:
            time.sleep(0.0002)

    def __getattr__(self, name: str) -> Any:
        self._settle()
        return getattr(self._rt.journal, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._rt.journal, name, value)

    def __repr__(self) -> str:
        return f"<settled {self._rt.journal!r}>"


@pytest.fixture
def wanmock_journal(request: pytest.FixtureRequest, wanmock_app: Starlette) -> Journal:
    """What clients did to the fake; judge it with ``wanmock.contracts.assertions``.

    Every read first waits (briefly, in real time) until the live server has journaled each
    request it received, so an assertion right after a client's call sees that call."""
    return cast("Journal", _SettledJournal(wanmock_app, request.node))


class FaultScripter:
    """Script faults and switch presets on the fake of the current test."""

    def __init__(self, app: Starlette) -> None:
        self._rt = app.state.wanmock

    def script(self, faults: list[str], *, provider: str | None = None,
               operation: str | None = None, retry_after: float = 5.0) -> None:
        """The next responses (of one endpoint, if given) get these faults, in order.

        With ``strict`` (the default), the test fails at teardown if some were never served."""
        from wanmock.server.faults import ScriptedFault, parse_fault
        from wanmock.server.vocab import Operation, parse_enum

        op = parse_enum(Operation, operation, name="operation") if operation else None
        items = [ScriptedFault(parse_fault(f, name="fault"), retry_after) for f in faults]
        from wanmock.server.state import at_once

        at_once(self._rt.state.script(items, provider=provider, operation=op))

    def preset(self, name: str) -> None:
        """Switch to a named preset for jobs submitted from now on."""
        from wanmock.server.state import at_once

        self._rt.use_preset(name)
        at_once(self._rt.state.set_preset(name))


@pytest.fixture
def wanmock_faults(wanmock_app: Starlette) -> FaultScripter:
    """Script faults and switch presets: ``wanmock_faults.script(["http-503"])``."""
    return FaultScripter(wanmock_app)
