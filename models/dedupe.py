"""Remembering every trip id seen in a run, in a bit set, to quarantine repeated ids (seen in 2021).

A year holds millions of trip ids in a narrow integer range, so one bit per possible id over the
range actually seen costs a few megabytes, where a Python set would cost hundreds.
"""

from __future__ import annotations

import numpy as np

from models.errors import UserError

MAX_SPAN = 1 << 31  # 2.1e9 possible ids -> 256 MiB of bits: refuse anything wider


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
        """Grow the bit set so that ids ``low..high`` fit (aligned to bytes)."""
        if self.bits.size == 0:
            self.low = low - low % 8
            self.bits = np.zeros((high - self.low) // 8 + 1, dtype=np.uint8)
            return
        new_low = min(self.low, low - low % 8)
        new_high = max(self.low + self.bits.size * 8 - 1, high)
        if new_high - new_low > MAX_SPAN:
            raise UserError(f"Trip ids span {new_low}..{new_high}, too wide to check for duplicates.")
        if new_low == self.low and new_high < self.low + self.bits.size * 8:
            return
        grown = np.zeros((new_high - new_low) // 8 + 1, dtype=np.uint8)
        start = (self.low - new_low) // 8
        grown[start : start + self.bits.size] = self.bits
        self.low, self.bits = new_low, grown

    def mark_repeats(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask of ids already seen (earlier batches or earlier in this one); records the rest."""
        repeats = np.zeros(ids.size, dtype=bool)
        if ids.size == 0:
            return repeats
        self.cover(int(ids.min()), int(ids.max()))
        in_batch = repeated_in_batch(ids)
        offset = ids - self.low
        byte, bit = offset >> 3, (offset & 7).astype(np.uint8)
        before = (self.bits[byte] >> bit) & 1
        repeats = in_batch | before.astype(bool)
        np.bitwise_or.at(self.bits, byte[~repeats], np.left_shift(1, bit[~repeats]).astype(np.uint8))
        return repeats
