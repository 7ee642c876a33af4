"""Peers of ``models.data.preprocess``: the same rules written as a user of Polars, DuckDB or pandas would.

Each module has ``clean_input(input_dir, output) -> summary`` (rows in, kept, quarantined and
``by_reason``), writes ``output`` and ``<output>.quarantine.parquet``, and shares only the rule tables
and file handling of ``bench.peers.rules`` and ``bench.peers.files`` (plain Python, no engine).
"""

PEERS = ("polars", "duckdb", "pandas")
