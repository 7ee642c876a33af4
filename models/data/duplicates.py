"""Remembering every trip id seen in a run, in a bit set, to quarantine repeated ids (seen in 2021).

A year holds millions of trip ids in a narrow integer range, so one bit per possible id over the
range actually seen costs a few megabytes, where a Python set would cost hundreds.
"""

from __future__ import annotations

import numpy as np

from models.core.errors import UserError

MAX_SPAN = 1 << 31  # 2.1e9 possible ids -> 256 MiB of bits: refuse anything wider
GROW_IDS = 1 << 20  # the least room added above the highest id (128 KiB)


def repeated_in_batch(ids: np.ndarray) -> np.ndarray:
    """Mask of ids that occur earlier in the same batch; cheap when ids ascend or are all distinct."""
    if ids.size < 2 or bool(np.all(ids[1:] > ids[:-1])):  # the usual published order
        return np.zeros(ids.size, dtype=bool)
    ordered = np.sort(ids)
    if not bool(np.any(ordered[1:] == ordered[:-1])):
        return np.zeros(ids.size, dtype=bool)
    _, first = np.unique(ids, return_index=True)
    repeated = np.ones(ids.size, dtype=bool)
    repeated[first] = False
    return repeated


class SeenIds:
    """A growable bit set of trip ids; ``mark_repeats`` flags ids seen before (or twice in one batch)."""

    def __init__(self) -> None:
        self.low = 0
        self.bits = np.zeros(0, dtype=np.uint8)

    def cover(self, low: int, high: int) -> None:
        """Grow the bit set so that ids ``low..high`` fit (aligned to bytes, with room to grow upwards).

        Ids mostly ascend from file to file, so the set grows by a quarter at a time rather than
        being copied for every batch.
        """
        top = self.low + self.bits.size * 8 - 1
        if self.bits.size and self.low <= low and high <= top:
            return
        new_low = low - low % 8 if self.bits.size == 0 else min(self.low, low - low % 8)
        new_high = high if self.bits.size == 0 else max(top, high)
        if new_high - new_low > MAX_SPAN:
            raise UserError(f"Trip ids span {new_low}..{new_high}, too wide to check for duplicates.")
        room = min((new_high - new_low) // 4 + GROW_IDS, MAX_SPAN - (new_high - new_low))
        grown = np.zeros((new_high + room - new_low) // 8 + 1, dtype=np.uint8)
        start = (self.low - new_low) // 8
        grown[start : start + self.bits.size] = self.bits
        self.low, self.bits = new_low, grown

    def mark_repeats(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask of ids already seen (earlier batches or earlier in this one); records the rest.

        Counting the bits the batch sets tells whether any new id occurs twice in it; only then are
        the ids sorted to find which.
        """
        if ids.size == 0:
            return np.zeros(0, dtype=bool)
        self.cover(int(ids.min()), int(ids.max()))
        offset = ids - self.low
        byte, bit = offset >> 3, (offset & 7).astype(np.uint8)
        before = ((self.bits[byte] >> bit) & 1).astype(bool)
        new = ~before
        window = self.bits[int(byte.min()) : int(byte.max()) + 1]  # a view: sees the bits set below
        set_before = int(np.bitwise_count(window).sum())
        np.bitwise_or.at(self.bits, byte[new], np.left_shift(1, bit[new]).astype(np.uint8))
        if int(np.bitwise_count(window).sum()) - set_before == int(new.sum()):
            return before
        return before | repeated_in_batch(ids)
