"""The trip-id bit set: repeats across batches and inside one batch, in any order, over growing ranges."""

from __future__ import annotations

import numpy as np
import pytest

from models.core.errors import UserError
from models.data.duplicates import MAX_SPAN, SeenIds

pytestmark = pytest.mark.unit


def marks(seen: SeenIds, ids: list[int]) -> list[bool]:
    return seen.mark_repeats(np.array(ids, dtype=np.int64)).tolist()


def test_repeats_within_an_unsorted_batch_flag_only_the_later_occurrences():
    assert marks(SeenIds(), [30, 10, 20, 10, 30, 30]) == [False, False, False, True, True, True]


def test_repeats_across_batches_and_ranges_that_grow_both_ways():
    seen = SeenIds()
    assert marks(seen, [1_000, 1_001]) == [False, False]
    assert marks(seen, [5_000_000, 1_001, 5_000_000]) == [False, True, True]
    assert marks(seen, [3, 1_000, 5_000_000, 4_999_999]) == [False, True, True, False]
    assert marks(seen, [3, 4_999_999, 7]) == [True, True, False]


def test_matches_a_python_set_on_random_batches():
    rng, seen, known = np.random.default_rng(7), SeenIds(), set()
    for _ in range(50):
        low = int(rng.integers(0, 3_000_000))
        ids = rng.integers(low, low + 5_000, int(rng.integers(1, 400)))
        expected = []
        for value in ids.tolist():
            expected.append(value in known)
            known.add(value)
        assert seen.mark_repeats(ids).tolist() == expected


def test_ids_spanning_too_wide_a_range_are_a_user_error():
    seen = SeenIds()
    marks(seen, [5])
    with pytest.raises(UserError, match="too wide"):
        marks(seen, [MAX_SPAN + 100])
