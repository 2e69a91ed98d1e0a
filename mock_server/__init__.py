"""wanmock's fake server: both providers' async image-job APIs on a simulated clock.

>>> from wanmock.server import create_app, Config, FakeClock
>>> clock = FakeClock()
>>> app = create_app(Config(), clock=clock)   # serve with uvicorn, or test via httpx.ASGITransport
"""

from .clock import Clock, FakeClock, RealClock
from .config import Config, LifecycleConfig, RunComfyConfig, ServerConfig, TheRouterConfig
from .distributions import Fixed, LogNormal, Uniform
from .engine import Engine
from .errors import ApiError, ConfigError, WanmockError
from .lifecycle import JobRecord, JobRequest, JobView, state_at
from .store import JobStore, MemoryStore
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
    "JobStore",
    "JobView",
    "LifecycleConfig",
    "LogNormal",
    "MemoryStore",
    "Phase",
    "RealClock",
    "RunComfyConfig",
    "ServerConfig",
    "TheRouterConfig",
    "Uniform",
    "WanmockError",
    "create_app",
    "state_at",
]
