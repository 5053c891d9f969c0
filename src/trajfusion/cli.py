"""The ``trajfusion`` command line: one subcommand per pipeline step.

Each stage module exposes ``register(subparsers)`` which adds its subcommands and sets
``func`` to a callable taking the parsed arguments. Stage modules keep heavy imports
(torch, transformers, math-verify) inside functions so that ``trajfusion --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from trajfusion.io import InputError

STAGE_MODULES = ("data", "model", "sample", "verify", "fuse", "train", "evaluate", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trajfusion", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in STAGE_MODULES:
        module = importlib.import_module(f"trajfusion.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = args.func(args)
    except InputError as exc:
        print(f"trajfusion {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
