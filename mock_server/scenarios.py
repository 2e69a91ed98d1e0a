"""Per-job scenarios, chosen by the client at submit with the ``X-Wanmock-Scenario`` header.

A scenario is a comma-separated list of words that reshape the job's :class:`Plan`:

====================== ==================================================================
``succeed``            the job succeeds (overrides the configured failure rate)
``fail``               it fails with an internal error (``fail-moderation``,
                       ``fail-internal``, ``fail-timeout`` pick the kind)
``fail-after-30s``     it fails 30 s after it starts running
``fail-after-3-polls`` it fails at the 3rd status poll (``succeed-after-3-polls`` too)
``run-20s``            it runs 20 s; ``slow`` = ``run-600s``
``queue-10s``          it waits 10 s before taking a slot
``queue-250``          250 jobs are ahead of it, draining one every ``backlog_drain`` s
``stuck``              it never leaves the queue; ``stuck-running`` never finishes running
``expire-after-60s``   it expires 60 s after submit
``cancel-after-30s``   it sits in the queue and is cancelled provider-side after 30 s
``partial-fail-2``     2 of its images fail on their own; it succeeds with the rest (all: fails)
====================== ==================================================================

Each form is one row of :data:`FORMS`: how it is written, how its number is read, what it does
to the plan. Adding a scenario is adding a row.

>>> parse_scenario("fail-after-3-polls, queue-10s")
(('fail-after-polls', 3), ('queue-delay', 10.0))
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .engine import FAILURE_MESSAGES, Plan
from .errors import InvalidRequest, Violation
from .lifecycle import Failure
from .vocab import FailureKind

__all__ = ["FORMS", "HEADER", "SCENARIO_FORMS", "Form", "apply_scenario", "parse_scenario"]

HEADER = "X-Wanmock-Scenario"
#: Seconds (at most ten years) and counts (at most a million): bounded so that no scenario can
#: produce a time the fake cannot write down.
_SECONDS = r"(\d{1,9}(?:\.\d{1,6})?)"
_COUNT = r"(\d{1,6})"
_MAX_SECONDS = 10 * 365 * 86_400.0

#: What a form does to the plan: (the plan so far, its number or word, the lifecycle's backlog
#: drain) -> the plan's fields to change.
Effect = Callable[[Plan, Any, float], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Form:
    """One scenario form: its name, how it is written (``<N>`` for its number), the regular
    expression reading it, how its number is converted, and its effect."""

    name: str
    written: tuple[str, ...]
    pattern: re.Pattern[str]
    convert: Callable[[str], Any] | None
    effect: Effect


def _internal(plan: Plan) -> Failure:
    if plan.failure is not None:
        return plan.failure
    return Failure(FailureKind.INTERNAL, FAILURE_MESSAGES[FailureKind.INTERNAL])


def _fail(plan: Plan, kind: str | None, drain: float) -> dict[str, Any]:
    failure = FailureKind(kind) if kind else FailureKind.INTERNAL
    return {"failure": Failure(failure, FAILURE_MESSAGES[failure])}


def _form(name: str, written: tuple[str, ...], pattern: str,
          convert: Callable[[str], Any] | None, effect: Effect) -> Form:
    return Form(name, written, re.compile(rf"^{pattern}\Z", re.ASCII), convert, effect)


FORMS: tuple[Form, ...] = (
    _form("succeed", ("succeed",), "succeed", None, lambda p, v, d: {"failure": None}),
    _form("fail", ("fail", "fail-moderation", "fail-internal", "fail-timeout"),
          "fail(?:-(moderation|internal|timeout))?", str, _fail),
    _form("fail-after-seconds", ("fail-after-<N>s",), rf"fail-after-{_SECONDS}s", float,
          lambda p, v, d: {"failure": _internal(p), "run_seconds": v}),
    _form("fail-after-polls", ("fail-after-<N>-polls",), rf"fail-after-{_COUNT}-polls?", int,
          lambda p, v, d: {"failure": _internal(p), "end_after_polls": v}),
    _form("succeed-after-polls", ("succeed-after-<N>-polls",),
          rf"succeed-after-{_COUNT}-polls?", int,
          lambda p, v, d: {"failure": None, "end_after_polls": v}),
    _form("run", ("run-<N>s",), rf"run-{_SECONDS}s", float,
          lambda p, v, d: {"run_seconds": v}),
    _form("slow", ("slow",), "slow", None, lambda p, v, d: {"run_seconds": 600.0}),
    _form("queue-delay", ("queue-<N>s",), rf"queue-{_SECONDS}s", float,
          lambda p, v, d: {"queue_delay": v}),
    _form("queue-ahead", ("queue-<N>",), rf"queue-{_COUNT}", int,
          lambda p, v, d: {"ahead": v, "drain": d}),
    _form("stuck", ("stuck",), "stuck", None, lambda p, v, d: {"stuck_in_queue": True}),
    _form("stuck-running", ("stuck-running",), "stuck-running", None,
          lambda p, v, d: {"run_seconds": math.inf}),
    _form("expire-after", ("expire-after-<N>s",), rf"expire-after-{_SECONDS}s", float,
          lambda p, v, d: {"expire_after": v}),
    _form("cancel-after", ("cancel-after-<N>s",), rf"cancel-after-{_SECONDS}s", float,
          lambda p, v, d: {"cancel_after": v}),
    _form("partial-fail", ("partial-fail-<N>",), rf"partial-fail-{_COUNT}", int,
          lambda p, v, d: {"failed_images": v}),
)
_BY_NAME = {form.name: form for form in FORMS}
#: Every way a scenario word may be written (for help texts and strategies).
SCENARIO_FORMS: tuple[str, ...] = tuple(w for form in FORMS for w in form.written)


def parse_scenario(text: str) -> tuple[tuple[str, object], ...]:
    """The steps of a scenario header, or :class:`InvalidRequest` naming the bad word."""
    steps: list[tuple[str, object]] = []
    for word in filter(None, (w.strip().lower() for w in text.split(","))):
        for form in FORMS:
            match = form.pattern.match(word)
            if match is None:
                continue
            raw = match.group(1) if match.groups() else None
            value = form.convert(raw) if raw is not None and form.convert else raw
            if isinstance(value, float) and value > _MAX_SECONDS:
                raise InvalidRequest([Violation(HEADER, "maximum", (
                    f"{HEADER}: {word[:40]!r} asks for more than ten years "
                    f"({_MAX_SECONDS:.0f} s)"))])
            steps.append((form.name, value))
            break
        else:
            raise InvalidRequest([Violation(HEADER, "enum", (
                f"{HEADER}: unknown scenario {word[:60]!r} (numbers: up to 9 digits of seconds, "
                "6 of counts); use a comma-separated list of: " + ", ".join(SCENARIO_FORMS)))])
    return tuple(steps)


def apply_scenario(plan: Plan, text: str, *, backlog_drain: float) -> Plan:
    """``plan`` reshaped by the scenario ``text``, word after word."""
    for name, value in parse_scenario(text):
        plan = dataclasses.replace(plan, **_BY_NAME[name].effect(plan, value, backlog_drain))
    return dataclasses.replace(plan, scenario=text.strip())
