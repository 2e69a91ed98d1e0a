"""``wanmock``: the command line. A thin layer over :class:`Config` and :func:`create_app`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

from .config import Config
from .errors import ConfigError, StateUnavailable

__all__ = ["main"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {text!r}")
    return int(text)


class _HelpFormatter(argparse.HelpFormatter):
    """Shows every flag's default: ``(default: X)`` when argparse knows it, otherwise the flag's
    own help says where its value comes from (a config file, an environment variable, ...)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.required:
            return f"{text} (required)"
        if (not action.option_strings or action.nargs == 0 or "default" in text
                or action.default in (None, argparse.SUPPRESS)):
            return text  # a switch, or a flag whose help says where its default comes from
        return f"{text} (default: %(default)s)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wanmock")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from .dialects import default_registry

    titles = [cls.title for cls in default_registry()]
    parser = argparse.ArgumentParser(
        prog="wanmock", formatter_class=_HelpFormatter,
        description=f"Fake {', '.join(titles[:-1])} and {titles[-1]} Wan 2.2 T2I Flash APIs, "
                    "for offline tests.",
    )
    parser.add_argument("--version", action="version", version=f"wanmock {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text,
                                   formatter_class=_HelpFormatter)

    serve = command("serve", "serve the fake of every provider")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--time-scale", type=_positive, metavar="X",
                       help="simulated seconds per real second (1000: a 60 s job takes 60 ms; "
                            "default 1: real time)")
    serve.add_argument("--fake-clock", action="store_true",
                       help="time moves only via POST /__admin/clock/advance")
    serve.add_argument("--seed", type=int, help="seed for every random draw (reproducible runs; "
                                                "default: a random seed, printed at start)")
    serve.add_argument("--config", metavar="FILE", help="TOML configuration file (default: none)")
    serve.add_argument("--preset", metavar="NAME",
                       help="start from a named preset (see: wanmock presets; default: none, "
                            "i.e. happy)")
    serve.add_argument("--api-key", action="append", metavar="KEY", dest="api_keys",
                       help="accept only this bearer key (repeatable; default: any non-empty key)")
    serve.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn",
                       help="HTTP server (granian: the fastest measured; pip install "
                            "'wanmock[granian]')")
    serve.add_argument("--admin-token", metavar="TOKEN",
                       help="require this bearer token on /__admin (default: loopback only)")
    serve.add_argument("--state", metavar="URL",
                       help="where the simulation state lives: memory (this process), or "
                            "redis://HOST:PORT/DB (unix:///PATH.sock?db=0), shared by every "
                            "worker and host using it (default: memory)")
    serve.add_argument("--namespace", metavar="NAME",
                       help="Redis key namespace: simulations sharing one Redis stay apart "
                            "(default: wanmock)")
    serve.add_argument("--workers", type=_at_least_one, metavar="N",
                       help="worker processes sharing the listening socket (N > 1 needs "
                            "--state redis://…; default 1)")
    serve.add_argument("--log-level", default="warning",
                       choices=["critical", "error", "warning", "info", "debug"],
                       help="the HTTP server's log level")
    command("presets", "list the named presets")
    verify = command("verify",
                     "check that a server (the fake or a real provider) honours the contract")
    _provider_flags(verify, otherwise="; else a dummy key the fake accepts")
    verify.add_argument("--base-url", required=True, help="the server to check")
    verify.add_argument("--max-jobs", type=_count, default=2, metavar="N",
                        help="jobs it may submit: one for the lifecycle, one for cancel")
    verify.add_argument("--fake-clock", action="store_true",
                        help="the server is a wanmock --fake-clock: advance it instead of sleeping")
    verify.add_argument("--poll-interval", type=_positive, default=5.0, metavar="S",
                        help="seconds between polls (simulated with --fake-clock)")
    verify.add_argument("--timeout", type=_positive, default=900.0, metavar="S",
                        help="real seconds the whole run may take; the check running then "
                             "fails saying so")
    smoke = command("smoke", "the same checks against the LIVE provider API (costs money)")
    _provider_flags(smoke)
    smoke.add_argument("--base-url", help="default: the provider's real API")
    smoke.add_argument("--max-jobs", type=_count, default=1, metavar="N",
                       help="jobs it may submit ($0.048 each)")
    smoke.add_argument("--yes", action="store_true", help="confirm the spend")
    smoke.add_argument("--save-dir", metavar="DIR",
                       help="save the real responses (key redacted) as schema examples here "
                            "(default: not saved)")
    load = command("load", "many simulated clients polling a server")
    _provider_flags(load, otherwise="; else a dummy key per client")
    load.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server to load")
    load.add_argument("--clients", type=_at_least_one, default=10, metavar="N",
                      help="simulated clients, each with its own key and connection")
    load.add_argument("--duration", type=_positive, default=10.0, metavar="S",
                      help="real seconds to run")
    load.add_argument("--max-jobs", type=_at_least_one, metavar="N",
                      help="stop submitting after this many jobs (default: no limit)")
    load.add_argument("--poll-interval", type=_positive, default=1.0, metavar="S",
                      help="seconds between a client's polls")
    load.add_argument("--policy", choices=["fixed", "backoff", "retry-after"],
                      default="retry-after", help="polling policy")
    load.add_argument("--no-download", dest="download", action="store_false",
                      help="skip the image downloads (API traffic only)")
    load.add_argument("--max-error-rate", type=_rate, metavar="RATE",
                      help="exit 1 when more than this share of requests fail, e.g. 0.05 or 5%% "
                           "(default: exit 1 on any connection error or more than 1%% errors)")
    load.add_argument("--allow-remote", action="store_true",
                      help="allow a non-loopback base URL (a real provider: costs money)")
    load.add_argument("--yes", action="store_true", help="confirm the spend with --allow-remote")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return int(text)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _rate(text: str) -> float:
    """A share of requests: ``0.05`` or ``5%``."""
    percent = text.endswith("%")
    try:
        value = float(text[:-1] if percent else text) / (100 if percent else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a share such as 0.05 or 5%, got {text!r}")\
            from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0% and 100%), got {text!r}")
    return value


def _provider_flags(parser: argparse.ArgumentParser, *, otherwise: str = "") -> None:
    from .dialects import default_registry

    parser.add_argument("--provider", required=True, choices=default_registry().names(),
                        help="whose API to speak")
    parser.add_argument("--api-key", metavar="KEY",
                        help="the bearer key (default: the provider's key variable, "
                             f"{_key_variables()}{otherwise})")


def _key_variables() -> str:
    from .dialects import default_registry

    return ", ".join(f"${cls.client.key_env} for {cls.name}" for cls in default_registry())


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file (if any), then the preset, then the flags that were given."""
    config = Config.from_toml(args.config) if args.config else Config()
    if args.preset:
        try:
            config = config.with_preset(args.preset)
        except ConfigError as exc:
            raise ConfigError(f"--preset: {exc}") from None
    server: dict[str, Any] = {}
    for flag in ("host", "port", "time_scale", "seed", "admin_token", "state", "namespace",
                 "workers"):
        value = getattr(args, flag)
        if value is not None:
            server[flag] = value
    if args.fake_clock:
        server["fake_clock"] = True
    if args.api_keys:
        server["api_keys"] = list(args.api_keys)
    return config.replace(server=server) if server else config


def serve(config: Config, log_level: str, server: str = "uvicorn") -> None:
    from .web.app import create_app
    from .web.connections import ConnectionLimits
    from .web.serve import (
        base_url,
        bind,
        raise_open_files_limit,
        serve_granian,
        serve_uvicorn,
        serve_workers,
    )

    if server == "granian":
        try:
            import granian  # noqa: F401
        except ImportError:
            raise ConfigError("--server granian: granian is not installed; "
                              "pip install 'wanmock[granian]'") from None
    workers = config.server.workers
    if workers > 1 and server == "granian":
        raise ConfigError(f"--workers {workers}: several workers run under uvicorn (they share "
                          "one listening socket); use --server uvicorn, or run one granian "
                          "process per port against the same --state")
    limits = ConnectionLimits.from_config(config.server)
    app = create_app(config)  # in this process first: a bad config or Redis fails here, once
    rt = app.state.wanmock
    sock = bind(config.server.host, config.server.port)
    base = base_url(sock)
    raise_open_files_limit(limits.max_connections)
    clock = "fake (advance via POST /__admin/clock/advance)" if config.server.fake_clock else (
        f"real x{config.server.time_scale:g}")
    where = config.server.state.split("@")[-1]
    print(f"wanmock serving on {base}  (seed {rt.state.seed}, clock {clock}, {server}, "
          f"state {where}" + (f", {workers} workers)" if workers > 1 else ")"))
    for dialect in rt.dialects.values():
        facts = dialect.client
        query = "&".join(f"{k}={v}" for k, v in facts.submit.query.items())
        print(f"  {dialect.title + ' base URL:':<32} {base}{facts.base_path}    e.g. "
              f"{facts.submit.method} {base}{facts.submit.path}{'?' * bool(query)}{query}")
    print(f"  OpenAPI: {base}/openapi.json   admin: {base}/__admin/health")
    print(f"  dashboard: {base}/__admin/   Prometheus: {base}/__admin/metrics")
    print(f"  limits: {limits.max_connections} connections, keep-alive "
          f"{limits.keep_alive_timeout:g} s, read timeout {limits.header_timeout:g} s "
          "([server] max_connections, keep_alive_timeout, read_timeout)")
    sys.stdout.flush()
    if server == "granian":
        host, port = sock.getsockname()[:2]
        sock.close()  # granian binds by itself, on the port found free above
        serve_granian(app, host, port, log_level, limits)
        return
    if workers > 1:
        serve_workers(partial(create_app, config), sock, limits, log_level, workers)
        return
    serve_uvicorn(app, sock, limits, log_level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "presets":
        from .presets import PRESETS

        width = max(map(len, PRESETS))
        for name, (text, _) in PRESETS.items():
            print(f"{name:<{width}}  {text}")
        return 0
    if args.command in ("verify", "smoke"):
        return _check_provider(parser, args)
    if args.command == "load":
        return _load(parser, args)
    try:
        config = config_from_args(args)
        if args.command == "serve":
            serve(config, args.log_level, args.server)
    except (ConfigError, StateUnavailable) as exc:
        parser.exit(2, f"wanmock: error: {exc}\n")
    return 0


def _load(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import asyncio
    import json

    from wanmock.contracts.load import LoadReport, PollPolicy, is_loopback, run_load
    from wanmock.contracts.provider import clock_mode_problem
    from wanmock.contracts.smoke import cost_statement, find_key

    remote = not is_loopback(args.base_url)
    if remote and not args.allow_remote:
        parser.exit(2, f"wanmock: error: --base-url {args.base_url} is not loopback; add "
                       "--allow-remote (and --max-jobs, --yes) to load a real provider\n")
    if remote:
        if args.max_jobs is None:
            parser.exit(2, "wanmock: error: --max-jobs is required with --allow-remote\n")
        print(cost_statement(args.provider, args.max_jobs, args.base_url))
        if not args.yes:
            parser.exit(2, "wanmock: error: this spends real money; add --yes to go ahead\n")
    elif asyncio.run(clock_mode_problem(args.base_url, fake_clock=False)) is not None:
        parser.exit(2, f"wanmock: error: the server at {args.base_url} runs a fake clock that "
                       "moves only when advanced: no job could finish while the load runs in "
                       "real time (it would report every job unfinished and pass); serve it "
                       "with --time-scale, e.g. 1000\n")
    key = args.api_key or find_key(args.provider) or "wanmock-load"
    seen: list[LoadReport] = []  # the run's report, to print if it is interrupted
    live = None
    if not args.json and sys.stdout.isatty():
        from rich.live import Live

        live = Live(refresh_per_second=4, transient=True)
        live.start()

    def progress(report: LoadReport) -> None:
        if not seen:
            seen.append(report)
        if live is not None:
            live.update(report.live_line())

    try:
        report = asyncio.run(run_load(
            args.provider, args.base_url, clients=args.clients, duration=args.duration,
            max_jobs=args.max_jobs, policy=PollPolicy(args.policy),
            poll_interval=args.poll_interval, api_key=key, allow_remote=args.allow_remote,
            progress=progress, download=args.download, max_error_rate=args.max_error_rate))
    except KeyboardInterrupt:
        if live is not None:
            live.stop()
        if not seen:
            raise
        report = seen[0]  # every job in flight was counted unfinished as the run was cancelled
        print("wanmock load: interrupted; the report so far:", file=sys.stderr)
    finally:
        if live is not None:
            live.stop()
    print(json.dumps(report.summary(), indent=2) if args.json else report.render())
    return 0 if report.ok else 1


def _check_provider(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    from pathlib import Path

    import httpx

    from wanmock.contracts.provider import (
        Report,
        admin_clock_wait,
        clock_mode_problem,
        verify_provider,
    )
    from wanmock.contracts.smoke import KEY_ENV, cost_statement, find_key, run_smoke

    key = args.api_key or find_key(args.provider)
    if args.command == "smoke":
        if not key:
            parser.exit(2, f"wanmock: error: --api-key or ${KEY_ENV[args.provider]} is needed "
                           "for a smoke test\n")
        from wanmock.contracts.smoke import REAL_BASE_URLS

        base = args.base_url or REAL_BASE_URLS[args.provider]
        print(cost_statement(args.provider, args.max_jobs, base))
        if not args.yes:
            parser.exit(2, "wanmock: error: this spends real money; add --yes to go ahead\n")
        save = Path(args.save_dir) if args.save_dir else None
        report = asyncio.run(run_smoke(args.provider, api_key=key, base_url=base,
                                       max_jobs=args.max_jobs, save_dir=save))
    else:
        problem = asyncio.run(clock_mode_problem(args.base_url, fake_clock=args.fake_clock))
        if problem is not None:
            parser.exit(2, f"wanmock: error: {problem}\n")

        def progress(line: str) -> None:
            # stderr, flushed: the report on stdout stays clean for CI; people see it move.
            print(f"  {line}", file=sys.stderr, flush=True)

        async def verify() -> Report:
            async with contextlib.AsyncExitStack() as stack:
                wait = None
                with contextlib.suppress(httpx.InvalidURL):  # verify_provider reports it
                    admin = httpx.AsyncClient(base_url=args.base_url, timeout=60)
                    wait = admin_clock_wait(await stack.enter_async_context(admin))
                return await verify_provider(args.provider, args.base_url, key or "wanmock-key",
                                             wait=wait if args.fake_clock else None,
                                             max_jobs=args.max_jobs,
                                             poll_interval=args.poll_interval,
                                             progress=progress, timeout=args.timeout)

        print(f"wanmock verify: {args.provider} at {args.base_url}", file=sys.stderr, flush=True)
        report = asyncio.run(verify())
    print(report.render())
    return 0 if report.ok else 1
