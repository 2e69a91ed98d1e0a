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
====================== ==================================================================

>>> parse_scenario("fail-after-3-polls, queue-10s")
(('fail-after-polls', 3), ('queue-delay', 10.0))
"""

from __future__ import annotations

import dataclasses
import math
import re

from .engine import FAILURE_MESSAGES, Plan
from .errors import InvalidRequest, Violation
from .lifecycle import Failure
from .vocab import FailureKind

__all__ = ["HEADER", "SCENARIO_FORMS", "apply_scenario", "parse_scenario"]

HEADER = "X-Wanmock-Scenario"
SCENARIO_FORMS = (
    "succeed", "fail", "fail-moderation", "fail-internal", "fail-timeout", "fail-after-<N>s",
    "fail-after-<N>-polls", "succeed-after-<N>-polls", "run-<N>s", "slow", "queue-<N>s",
    "queue-<N>", "stuck", "stuck-running", "expire-after-<N>s", "cancel-after-<N>s",
)
#: Seconds (at most ten years) and counts (at most a million): bounded so that no scenario can
#: produce a time the fake cannot write down.
_NUMBER = r"(\d{1,9}(?:\.\d{1,6})?)"
_COUNT = r"(\d{1,6})"
_MAX_SECONDS = 10 * 365 * 86_400.0
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(rf"^{pattern}$", re.ASCII))
    for name, pattern in (
        ("succeed", "succeed"),
        ("fail", "fail(?:-(moderation|internal|timeout))?"),
        ("fail-after-seconds", rf"fail-after-{_NUMBER}s"),
        ("fail-after-polls", rf"fail-after-{_COUNT}-polls?"),
        ("succeed-after-polls", rf"succeed-after-{_COUNT}-polls?"),
        ("run", rf"run-{_NUMBER}s"),
        ("slow", "slow"),
        ("queue-delay", rf"queue-{_NUMBER}s"),
        ("queue-ahead", rf"queue-{_COUNT}"),
        ("stuck", "stuck"),
        ("stuck-running", "stuck-running"),
        ("expire-after", rf"expire-after-{_NUMBER}s"),
        ("cancel-after", rf"cancel-after-{_NUMBER}s"),
    )
)


def parse_scenario(text: str) -> tuple[tuple[str, object], ...]:
    """The steps of a scenario header, or :class:`InvalidRequest` naming the bad word."""
    steps: list[tuple[str, object]] = []
    for word in filter(None, (w.strip().lower() for w in text.split(","))):
        for name, pattern in _PATTERNS:
            match = pattern.match(word)
            if match:
                raw = match.group(1) if match.groups() else None
                value: object = raw
                if raw is not None and name != "fail":
                    value = int(raw) if name in ("fail-after-polls", "succeed-after-polls",
                                                 "queue-ahead") else float(raw)
                    if isinstance(value, float) and value > _MAX_SECONDS:
                        raise InvalidRequest([Violation(HEADER, "maximum", (
                            f"{HEADER}: {word[:40]!r} asks for more than ten years "
                            f"({_MAX_SECONDS:.0f} s)"))])
                steps.append((name, value))
                break
        else:
            raise InvalidRequest([Violation(HEADER, "enum", (
                f"{HEADER}: unknown scenario {word[:60]!r} (numbers: up to 9 digits of seconds, "
                "6 of counts); use a comma-separated list of: " + ", ".join(SCENARIO_FORMS)))])
    return tuple(steps)


def apply_scenario(plan: Plan, text: str, *, backlog_drain: float) -> Plan:
    """``plan`` reshaped by the scenario ``text``."""
    changes: dict[str, object] = {"scenario": text.strip()}
    for name, value in parse_scenario(text):
        if name == "succeed":
            changes["failure"] = None
        elif name == "fail":
            kind = FailureKind(str(value)) if value else FailureKind.INTERNAL
            changes["failure"] = Failure(kind, FAILURE_MESSAGES[kind])
        elif name == "fail-after-seconds":
            changes["failure"] = _internal(changes, plan)
            changes["run_seconds"] = value
        elif name in ("fail-after-polls", "succeed-after-polls"):
            changes["failure"] = _internal(changes, plan) if name.startswith("fail") else None
            changes["end_after_polls"] = value
        elif name == "run":
            changes["run_seconds"] = value
        elif name == "slow":
            changes["run_seconds"] = 600.0
        elif name == "queue-delay":
            changes["queue_delay"] = value
        elif name == "queue-ahead":
            changes["ahead"], changes["drain"] = value, backlog_drain
        elif name == "stuck":
            changes["stuck_in_queue"] = True
        elif name == "stuck-running":
            changes["run_seconds"] = math.inf
        elif name == "expire-after":
            changes["expire_after"] = value
        elif name == "cancel-after":
            changes["cancel_after"] = value
    return dataclasses.replace(plan, **changes)  # type: ignore[arg-type]


def _internal(changes: dict[str, object], plan: Plan) -> Failure:
    current = changes.get("failure", plan.failure)
    if isinstance(current, Failure):
        return current
    return Failure(FailureKind.INTERNAL, FAILURE_MESSAGES[FailureKind.INTERNAL])
