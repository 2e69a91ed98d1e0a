"""wanmock's fake server: every provider's async image-job API on a simulated clock.

>>> from wanmock.server import create_app, Config, FakeClock
>>> clock = FakeClock()
>>> app = create_app(Config(), clock=clock)   # serve with uvicorn, or test via httpx.ASGITransport
"""

from .clock import Clock, FakeClock, RealClock
from .config import Config, LifecycleConfig, ServerConfig
from .distributions import Fixed, LogNormal, Uniform
from .engine import Engine
from .errors import ApiError, ConfigError, WanmockError
from .lifecycle import JobRecord, JobRequest, JobView, state_at
from .state import MemoryState, SimState
from .vocab import FailureKind, Phase
from .web.app import create_app

__all__ = [
    "ApiError",
    "Clock",
    "Config",
    "ConfigError",
    "Engine",
    "FailureKind",
    "FakeClock",
    "Fixed",
    "JobRecord",
    "JobRequest",
    "JobView",
    "LifecycleConfig",
    "LogNormal",
    "MemoryState",
    "Phase",
    "RealClock",
    "ServerConfig",
    "SimState",
    "Uniform",
    "WanmockError",
    "create_app",
    "state_at",
]
