"""The ``trajfusion`` command line: one subcommand per pipeline step.

Each stage module exposes ``register(subparsers)`` which adds its subcommands and sets
``func`` to a callable taking the parsed arguments. Stage modules keep heavy imports
(torch, transformers, math-verify) inside functions so that ``trajfusion --help`` is fast.

Exit codes: 0 success; 2 bad input (``InputError``, also argparse usage errors); 74 (EX_IOERR)
an operating-system error such as an output that cannot be written (disk full, read-only
file system) - each printed as one line naming the file, with the traceback only under -v.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from trajfusion.io import InputError

EXIT_INPUT_ERROR = 2
EXIT_OS_ERROR = 74  # sysexits.h EX_IOERR

STAGE_MODULES = ("data", "model", "sample", "verify", "fuse", "reflect", "train", "distill", "rl", "evaluate",
                 "report", "export")


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
        return EXIT_INPUT_ERROR
    except OSError as exc:
        logging.getLogger("trajfusion").debug("%s failed", args.command, exc_info=True)
        print(f"trajfusion {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_OS_ERROR
    return int(result or 0)


def describe_os_error(exc: OSError) -> str:
    """``OutputError`` says what it could not write; other OSErrors name their file if known."""
    if exc.filename is not None and exc.strerror and type(exc).__str__ is OSError.__str__:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
