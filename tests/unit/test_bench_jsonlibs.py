"""bench.jsonlibs: every candidate for the numbers-to-matrix step makes the same numbers."""

from __future__ import annotations

import json

import numpy as np

from bench.jsonlibs import matrix_builders, number_text


def test_every_matrix_builder_makes_the_numbers_json_reads() -> None:
    raw = number_text(rows=50, columns=3)
    expected = np.array(json.loads(raw), dtype=np.float64).ravel()
    for name, build in matrix_builders().items():
        assert build(raw).tobytes() == expected.tobytes(), name
