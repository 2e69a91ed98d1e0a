"""All mutable simulation state behind one interface; see :mod:`.base` for the contract.

>>> from wanmock.server.clock import FakeClock
>>> state = MemoryState(FakeClock(), seed=1)
>>> isinstance(state, SimState)
True
"""

from .base import Admission, Census, Created, Gate, Identity, Page, Read, SimState, Stored
from .memory import MemoryState, at_once

__all__ = [
           "Admission",
           "Census",
           "Created",
           "Gate",
           "Identity",
           "MemoryState",
           "Page",
           "Read",
           "SimState",
           "Stored",
           "at_once",
]
