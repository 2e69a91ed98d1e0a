import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wanmock.server.cli import build_parser, config_from_args, main
from wanmock.server.dialects import default_registry


def parse(*argv: str):  # type: ignore[no-untyped-def]
    return config_from_args(build_parser().parse_args(["serve", *argv]))


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = 9000\nseed = 1\n[lifecycle]\nconcurrency = 4\n")
    config = parse("--config", str(path), "--seed", "5", "--time-scale", "1000", "--fake-clock",
                   "--api-key", "a", "--api-key", "b")
    assert (config.server.port, config.server.seed, config.server.time_scale) == (9000, 5, 1000)
    assert config.server.fake_clock and config.server.api_keys == {"a", "b"}
    assert config.lifecycle.concurrency == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--time-scale", "0"], "--time-scale: must be > 0"),
        (["serve", "--port", "99999"], "--port: must be a port number"),
        (["serve", "--seed", "x"], "--seed: invalid int value"),
        (["serve", "--bogus"], "unrecognized arguments: --bogus"),
        (["serv"], "invalid choice: 'serv'"),
    ],
)
def test_bad_flags_are_usage_errors_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_config_file_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[lifecycle]\nrun_time = 'forever'\n")
    with pytest.raises(SystemExit) as info:
        main(["serve", "--config", str(path)])
    assert info.value.code == 2
    assert "lifecycle.run_time: cannot read 'forever'" in capsys.readouterr().err


def test_python_m_wanmock_server_serves_and_prints_both_base_urls() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "wanmock.server", "serve", "--port", "0", "--seed", "3",
         "--fake-clock"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2 + len(default_registry().names()))]
        assert "seed 3" in lines[0]
        base = lines[0].split()[3]
        assert base.startswith("http://127.0.0.1:")
        registry = default_registry()
        named = {cls.title for cls in registry
                 if any(f"{cls.title} base URL" in line for line in lines[1:-1])}
        assert named == {cls.title for cls in registry}, lines
        health = httpx.get(f"{base}/__admin/health", timeout=10).json()
        assert health["seed"] == 3 and health["providers"] == registry.names()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_with_granian_answers_a_lifecycle_on_the_fast_path() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "wanmock.server", "serve", "--port", "0", "--fake-clock",
         "--server", "granian"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        assert process.stdout is not None
        base = process.stdout.readline().split()[3]
        headers = {"authorization": "Bearer k"}
        deadline = time.monotonic() + 20  # real start-up time of another process, not simulated
        while True:
            try:
                job = httpx.post(f"{base}/v1/images/generations?async=true", headers=headers,
                                 json={"model": "wan/wan2.2-t2i-flash", "prompt": "a cat"},
                                 timeout=5).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "granian did not start"
                time.sleep(0.05)
        httpx.post(f"{base}/__admin/clock/advance", json={"seconds": 3600}, timeout=5)
        polled = httpx.get(f"{base}/v1/jobs/{job['id']}", headers=headers, timeout=5).json()
        assert (job["status"], polled["status"]) == ("queued", "succeeded")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_version_comes_from_the_installed_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"wanmock {version('wanmock')}"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in build_parser()._actions
                   if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_flag_of_every_subcommand_shows_its_default(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    # One block per flag: its line of option strings plus the wrapped help under it.
    blocks: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("  -"):
            flag = line.split()[0].rstrip(",")
            blocks[flag] = line
        elif line.startswith("    ") and blocks:
            blocks[flag] += line
    blocks = {flag: " ".join(block.split()) for flag, block in blocks.items()}
    for action in _subcommands()[command]._actions:
        if not action.option_strings or action.nargs == 0:  # -h, switches
            continue
        block = blocks[action.option_strings[0]]
        assert action.help, f"{command} {action.option_strings[0]} has no help"
        if action.required:
            assert "(required)" in block, block
        elif action.default is not None:
            assert f"(default: {action.default})" in block, block
        else:
            assert "default" in block, f"{command}: say what {block!r} does when not given"
