"""What the commands share: a parser whose errors are one line "error: ...",
exit 2 (as every other bad input of the CLI), argument types that state
their rule, and the median and range of repeated timings."""
from __future__ import annotations

import argparse
import statistics

WIDE_RANGE = 1.5  # max/min of a row's rounds beyond which the table warns


class UsageError(ValueError):
    """A bad command line; __main__ prints it as "error: ..." and exits 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message.removeprefix('argument ')} (see {self.prog} --help)")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's paragraphs and lists as written."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def int_list(text: str) -> list[int]:
    """"1,32" -> [1, 32]: positive integers separated by commas."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, such as 1,32; got {text!r}")
    return [int(p) for p in parts]


def spread(values) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def is_wide(values) -> bool:
    return min(values) > 0 and max(values) / min(values) > WIDE_RANGE


WIDE_NOTE = (f"! wide range (max/min > {WIDE_RANGE}) over the rounds: the machine was busy or "
             "changed speed while it ran; trust that row less, rerun with more --rounds on a "
             "quiet machine")
