"""The README's admin examples work as written, and its promises about time are stated."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx
import pytest

from wanmock.server import FakeClock, create_app

README = (Path(__file__).parent.parent / "README.md").read_text()


def curl_commands() -> list[list[str]]:
    """Every ``curl`` command in the README's shell blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("curl "):
                commands.append(shlex.split(line, comments=True))
    return commands


def parse(argv: list[str]) -> tuple[str, str, dict[str, str], str | None]:
    method, url, headers, data = "GET", "", {}, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip().lower()] = value.strip()
        elif arg == "-d":
            data = next(args)
            method = "POST" if method == "GET" else method
        elif not arg.startswith("-"):
            url = arg
    return method, url, headers, data


ADMIN = [c for c in curl_commands() if "/__admin/" in " ".join(c)]


def test_the_readme_shows_admin_calls_with_a_json_body() -> None:
    assert sum(parse(c)[3] is not None for c in ADMIN) >= 3


@pytest.mark.anyio
@pytest.mark.parametrize("argv", ADMIN, ids=[parse(c)[1].split("/__admin")[1] for c in ADMIN])
async def test_each_admin_curl_example_works_as_written(argv: list[str]) -> None:
    method, url, headers, data = parse(argv)
    if data is not None:
        assert headers.get("content-type") == "application/json", " ".join(argv)
    app = create_app(clock=FakeClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        answer = await http.request(method, url, headers=headers, content=data)
    assert answer.status_code == 200, answer.text


def test_time_says_retry_after_and_timestamps_are_simulated_under_time_scale() -> None:
    time = README.split("\n## Time\n", 1)[1].split("\n## ", 1)[0]
    scaled = next(item for item in time.split("\n- ") if item.startswith("`--time-scale"))
    assert "`Retry-After` values and timestamps are in simulated seconds" in scaled


def toml_examples() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", README, re.S)


def test_the_readme_shows_a_configuration_file() -> None:
    assert any("[server]" in block for block in toml_examples())


@pytest.mark.parametrize("block", toml_examples())
def test_each_toml_example_loads_as_written(block: str, tmp_path: Path) -> None:
    """A key renamed in the code (or misspelt in the README) fails here, naming the key."""
    from wanmock.server.config import Config

    path = tmp_path / "wanmock.toml"
    path.write_text(block)
    Config.from_toml(path)


def test_a_misspelt_key_in_a_toml_example_would_fail(tmp_path: Path) -> None:
    from wanmock.server.config import Config
    from wanmock.server.errors import ConfigError

    path = tmp_path / "wanmock.toml"
    path.write_text("[server]\nfast_path = true\n")
    with pytest.raises(ConfigError, match="fast_path"):
        Config.from_toml(path)
