from pathlib import Path
from typing import Any

import pytest

from wanmock.server.config import Config, QueueScope
from wanmock.server.dialects import default_registry
from wanmock.server.dialects.runcomfy import NotReadyStyle
from wanmock.server.distributions import Fixed
from wanmock.server.errors import ConfigError

REGISTRY = default_registry()


def options(config: Config, provider: str) -> Any:
    return REGISTRY.options(REGISTRY.get(provider), config)


def test_defaults_follow_the_docs() -> None:
    config = Config()
    assert options(config, "therouter").retention == 604800  # expires_at - created_at in the guide
    assert options(config, "therouter").sync_deadline == 100
    assert options(config, "runcomfy").submit_status == 200
    assert options(config, "runcomfy").result_before_done is NotReadyStyle.STATE
    assert config.server.host == "127.0.0.1" and config.server.port == 8000


def test_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "wanmock.toml"
    path.write_text(
        '[server]\nseed = 7\napi_keys = ["a", "b"]\n'
        '[lifecycle]\nrun_time = "fixed(5)"\nqueue_scope = "provider"\n'
        '[runcomfy]\nresult_before_done = "error-400005"\nsubmit_status = 202\n'
    )
    config = Config.from_toml(path)
    assert config.server.seed == 7
    assert config.server.api_keys == frozenset({"a", "b"})
    assert config.lifecycle.run_time == Fixed(5.0)
    assert config.lifecycle.queue_scope is QueueScope.PROVIDER
    assert options(config, "runcomfy").result_before_done is NotReadyStyle.ERROR_400005
    assert options(config, "runcomfy").submit_status == 202


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lifecycle": {"run_tme": "fixed(1)"}},
         r"lifecycle: unknown key 'run_tme'; did you mean 'run_time'"),
        ({"servr": {}}, r"\[servr\]: unknown section.*did you mean 'server'"),
        ({"runcomfi": {}}, r"\[runcomfi\]: unknown section.*did you mean 'runcomfy'"),
        ({"runcomfy": {"result_before_done": "error"}},
         r"runcomfy.result_before_done: unknown value 'error'"),
        ({"runcomfy": {"submit_status": 201}}, r"submit_status must be 200 \(docs\) or 202"),
        ({"runcomfy": {"submit_sttus": 202}}, r"runcomfy: unknown key 'submit_sttus'"),
        ({"lifecycle": {"concurrency": 0}}, r"concurrency must be >= 1"),
        ({"lifecycle": {"failure_rate": 2}}, r"failure_rate must be in \[0, 1\]"),
        ({"server": {"port": "80"}}, r"server.port: expected an integer"),
        ({"therouter": {"cancel_running": 1}}, r"therouter.cancel_running: expected true or false"),
        ({"server": {"time_scale": 0}}, r"time_scale must be > 0"),
        ({"server": {"workers": 2}}, r"workers > 1 needs shared state"),
        ({"server": {"state": "postgres://x"}}, r"server.state must be 'memory' or a Redis URL"),
        ({"server": {"memo_entries": 0}}, r"server.memo_entries must be >= 1"),
    ],
)
def test_bad_config_names_the_key(data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        REGISTRY.build(Config.from_mapping(data))


def test_a_provider_section_survives_presets_and_replace() -> None:
    config = Config.from_mapping({"therouter": {"sync_deadline": 30}})
    for later in (config.with_preset("flaky"), config.replace(lifecycle={"concurrency": 3}),
                  Config.from_mapping({"preset": "outage"}, base=config)):
        assert options(later, "therouter").sync_deadline == 30
    merged = config.replace(therouter={"cancel_running": True})
    assert options(merged, "therouter").sync_deadline == 30
    assert options(merged, "therouter").cancel_running is True


def test_bad_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        Config.from_toml(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.from_toml(broken)


def test_from_env(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[therouter]\nsync_deadline = 5\n")
    config = Config.from_env({"WANMOCK_CONFIG": str(path), "WANMOCK_SEED": "9",
                              "WANMOCK_TIME_SCALE": "1000"})
    assert (config.server.seed, config.server.time_scale) == (9, 1000.0)
    assert options(config, "therouter").sync_deadline == 5.0
    with pytest.raises(ConfigError, match="WANMOCK_SEED='x' is not a int"):
        Config.from_env({"WANMOCK_SEED": "x"})


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.server = None  # type: ignore[misc]


def test_the_cache_bounds_reach_the_runtime() -> None:
    from wanmock.server import FakeClock, create_app

    app = create_app(Config.from_mapping({"server": {"memo_entries": 7,
                                                     "image_cache_bytes": 1024}}),
                     clock=FakeClock())
    rt = app.state.wanmock
    assert (rt.memo.capacity, rt.renderer.cache_bytes) == (7, 1024)
