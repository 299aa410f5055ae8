"""bench/buildtime.py: the import check's seconds read from ``package``'s timestamped lines."""

from __future__ import annotations

from bench.buildtime import import_check_seconds

CHECKED = """\
[  1.3s] left out skops: not needed at run time
[  2.4s] checking that the bundle imports and predicts on its own
[  4.6s] writing bundle.zip
"""
SKIPPED = """\
[  1.1s] checking that the bundle imports and predicts on its own
warning: skipped the import check: the bundle is for arm64 and this host is x86_64; run ...
[  1.1s] writing bundle.zip
"""


def test_the_check_lasts_until_the_next_step() -> None:
    assert import_check_seconds(CHECKED) == 4.6 - 2.4


def test_a_skipped_check_is_no_measurement() -> None:
    """An arm64 bundle built on x86_64 announces the check, then skips it: not a 0 s check."""
    assert import_check_seconds(SKIPPED) is None
    assert import_check_seconds("[  0.0s] resolving x\n") is None
