"""`blanklogo`: one console script, a subcommand per part of the service.

Each subcommand lives in the module that owns the work; this file only routes, and
imports lazily so that `blanklogo web` never pulls in torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# name -> (module, help). The module provides add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": (
        "core.dev",
        "run web + worker on embedded defaults (SQLite, local storage, private Redis)",
    ),
    "web": (
        "webhooks.server",
        "run the HTTP server (intake API, Slack, Telegram, health, metrics)",
    ),
    "worker": ("core.worker", "run an arq worker that processes jobs"),
    "migrate": ("core.store", "apply database migrations"),
    "remove": ("gpu.cli", "remove a watermark from one video file"),
    "ops": ("core.ops_cli", "operator commands: health, queue, retry-stuck, job, retry, cancel"),
    "telegram-poll": ("bots.telegram.poll", "run the Telegram bot with long polling"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blanklogo", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            cmd.set_defaults(_unavailable=f"{name} is unavailable: {exc}")
            continue
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


#: loggers that write secrets at INFO: httpx logs every request URL, and the Telegram Bot API
#: carries the bot token in the path (api.telegram.org/bot<token>/sendMessage)
_LEAKY_LOGGERS = ("httpx", "httpcore")


def configure_logging(verbose: bool = False) -> None:
    """Log to stderr at INFO (DEBUG when verbose), with URL-logging libraries held to WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in _LEAKY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if getattr(args, "_unavailable", None):
        print(args._unavailable, file=sys.stderr)
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
