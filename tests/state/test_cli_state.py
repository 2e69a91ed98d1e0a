"""``wanmock serve --state/--namespace/--workers``: bad combinations are usage errors naming the
flag, before anything is served."""

from __future__ import annotations

import pytest

from wanmock.server.cli import build_parser, config_from_args, main


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_flags_reach_the_config(redis_url: str) -> None:
    args = build_parser().parse_args(["serve", "--state", redis_url, "--namespace", "team-a",
                                      "--workers", "3"])
    server = config_from_args(args).server
    assert (server.state, server.namespace, server.workers) == (redis_url, "team-a", 3)
    assert config_from_args(build_parser().parse_args(["serve"])).server.state == "memory"


def test_several_workers_need_a_shared_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert "state" in _refused(["serve", "--workers", "2", "--port", "0"], capsys)


def test_granian_with_several_workers_is_refused_saying_what_to_do(
        redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(["serve", "--server", "granian", "--workers", "2", "--state", redis_url,
                    "--port", "0"], capsys)
    assert "--workers 2" in err and "uvicorn" in err


def test_a_state_that_is_no_redis_url_or_no_redis(capsys: pytest.CaptureFixture[str]) -> None:
    assert "server.state" in _refused(["serve", "--state", "postgres://x", "--port", "0"],
                                      capsys)
    err = _refused(["serve", "--state", "unix:///nonexistent/redis.sock", "--port", "0"], capsys)
    assert "Redis" in err and "unavailable" in err
