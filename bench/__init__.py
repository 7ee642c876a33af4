"""Benchmarks for to-bikes (``python -m bench``, ``make bench``): each figure beside a same-run reference."""
