"""Status answers kept per job until they can change (the hot path of a polling fleet).

A job's record changes only with a new version (a cancel, a reschedule, a poll-driven end), and
:func:`~wanmock.server.lifecycle.next_change` says until when everything derived from the record
holds; a queue position may move sooner, so it is compared too. Encoded once, sent many times.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dialects import Dialect, Links, Reply
from ..lifecycle import JobView, next_change
from ..state import Stored
from .bodies import encode_reply

__all__ = ["Answer", "Encoded", "Memo"]


Encoded = tuple[int, list[tuple[bytes, bytes]], bytes]


@dataclass(frozen=True, slots=True)
class Answer:
    """A status answer: the reply (its schema, for checks) and its bytes as sent."""

    reply: Reply
    encoded: Encoded


@dataclass(slots=True)
class _Kept:
    version: int
    base: str
    since: float
    until: float
    position: int | None
    answer: Answer


class Memo:
    """Kept status answers, per job (bounded: oldest out first)."""

    def __init__(self, *, enabled: bool = True, capacity: int = 16_384) -> None:
        self.enabled = enabled
        self.capacity = capacity
        self._kept: dict[str, _Kept] = {}
        #: Answers sent from the memo (for tests and benchmarks).
        self.hits = 0

    def status(self, dialect: Dialect, links: Links, now: float, stored: Stored,
               view: JobView) -> Answer:
        """The status answer of ``view``: rendered, or kept from an identical earlier one."""
        if not self.enabled:
            return _render(dialect, links, view)
        kept = self._kept.get(view.id)
        if (kept is not None and kept.version == stored.version and kept.base == links.base
                and kept.since <= now < kept.until and kept.position == view.queue_position):
            self.hits += 1
            return kept.answer
        answer = _render(dialect, links, view)
        if view.id not in self._kept and len(self._kept) >= self.capacity:
            del self._kept[next(iter(self._kept))]
        self._kept[view.id] = _Kept(stored.version, links.base, now,
                                    next_change(stored.record, now), view.queue_position, answer)
        return answer

    def clear(self) -> None:
        self._kept.clear()


def _render(dialect: Dialect, links: Links, view: JobView) -> Answer:
    rendered = dialect.render_status(view, links)
    return Answer(rendered, encode_reply(rendered))
