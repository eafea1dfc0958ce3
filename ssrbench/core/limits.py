"""The one rule for numbers a user types (command line, config files): how a number is read, and the
upper bound of every count, so a hostile value is refused before anything is built from it. A leaf:
it imports nothing of ssrbench.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

# Seeds: numpy's legacy seeding takes 0 .. 2**32 - 1, torch 0 .. 2**64 - 1. Every seed a run derives
# (seed + 1, seed + 2, and evaluate's seed * 1_000_003 + crc32(name) < 2**52) then stays inside torch's range.
MAX_SEED = 2**32 - 1
MAX_SEEDS = 1_000  # training seeds in one run (each trains its own models)
MAX_STEPS = 10_000  # attack and reverse-attack steps (the budgets' own bound)
# torch CPU threads: a fixed bound, not a multiple of this machine's cores, so a recorded command replays
# on any machine; above any single machine's core count, far below where OpenMP cannot create the
# threads and the process dies (torch.set_num_threads(100000) is a segmentation fault; 2**31 an overflow).
MAX_THREADS = 1_024
MAX_GPUS_PER_TASK = 64  # more than any one node has; Ray would otherwise wait forever
MAX_RETRIES = 10  # a unit whose worker died, started again: a unit that dies ten times has a bug, not bad luck
MAX_IMAGES = 10_000_000  # train / eval images (CIFAR-10 has 60,000; ImageNet 1.3 million)
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536


def shown(value: Any, width: int = 40) -> str:
    """A value as an error message names it: its repr, shortened when a hostile one is pages long."""
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 12]}...{text[-4:]} ({len(str(value))} characters)"


def parse_number(value: Any) -> float:
    """A finite float from a number or text ("0.1", "1e-3", "8/255"); anything else is a ValueError
    naming the value -- never an OverflowError (a 400-digit fraction), never inf or nan."""
    if isinstance(value, bool):
        raise ValueError(f"{shown(value)} is not a number")
    if isinstance(value, (int, float)):
        number = value
    else:
        text = str(value).strip()
        try:
            number = float(text)  # "1e400" is inf here, refused below
        except ValueError:
            try:  # budgets are written "8/255" in papers
                number = Fraction(text)
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"{shown(value)} is not a number or a fraction like 8/255") from None
    try:
        number = float(number)
    except OverflowError:
        number = math.inf
    if math.isinf(number) and "inf" not in str(value).lower():  # "1e400", 10**400: a value, not infinity
        raise ValueError(f"{shown(value)} is too large for a number (at most about 1.8e308)")
    if not math.isfinite(number):
        raise ValueError(f"{shown(value)} is not a finite number")
    return number
