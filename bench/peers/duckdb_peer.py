"""The preprocessing rules in DuckDB SQL: each file loaded as lines, checked by one generated query.

Lines are read as a one-column CSV (so rows with a wrong field count stay visible) into a table,
split with ``string_split``, and one ``INSERT ... SELECT`` per file parses, checks and gives every
row the first failing check (a ``CASE`` in the data stage's order) with SQL macros for the shared
cleaning. The date format of a file is decided from an aggregate (day-first evidence) and a
reservoir sample of its start times. Duplicates are a window over the kept rows of all files (first
in input order wins) that keeps only the repeated rows' keys, so the checked table is never copied;
features are SQL expressions, and both outputs are streamed from it by ``COPY ... TO`` Parquet.
DuckDB runs every query on all cores and spills to disk when memory runs short.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from bench.peers import rules
from bench.peers.files import CsvInput, list_csvs, utf8_copy

SPACE = " \\t\\r\\n"  # as an SQL E-string
MACROS = f"""
CREATE MACRO clean(x) AS
    CASE WHEN trim(x, E'{SPACE}') IN ('', 'NULL', 'NULLNULL') THEN NULL ELSE trim(x, E'{SPACE}') END;
CREATE MACRO as_int(t, pattern) AS CASE WHEN regexp_full_match(t, pattern) THEN CAST(t AS BIGINT) END;
CREATE MACRO bad_int(t, pattern) AS t IS NOT NULL AND NOT regexp_full_match(t, pattern);
CREATE MACRO station_name(t) AS regexp_replace(replace(t, E'\\t', ' '), ' {{2,}}', ' ', 'g');
"""
UNSIGNED, SIGNED = r"'\d{1,18}'", r"'-?\d{1,18}'"
CHECKED = """
CREATE TABLE checked (
    file_no INTEGER, pos BIGINT, repaired BOOLEAN, trip_id BIGINT, start_time TIMESTAMP,
    end_time TIMESTAMP, duration_s BIGINT, start_station_id BIGINT, start_station_name VARCHAR,
    end_station_id BIGINT, end_station_name VARCHAR, bike_id BIGINT, bike_model VARCHAR,
    user_type VARCHAR, source_file VARCHAR, reason VARCHAR, line VARCHAR
)
"""


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_lines(con: duckdb.DuckDBPyConnection, csv: CsvInput, scratch: Path) -> None:
    """The file's data lines into table ``lines`` (cp1252 files through a UTF-8 copy)."""
    for path in (csv.path, None):
        path = path or utf8_copy(csv, scratch)
        read = (
            f"read_csv({quote(str(path))}, columns={{'line': 'VARCHAR'}}, header=false, skip=1, "
            f"delim='\x1f', quote='', escape='', auto_detect=false, strict_mode=false)"
        )
        try:
            con.execute(f"CREATE OR REPLACE TABLE lines AS SELECT line FROM {read} WHERE line IS NOT NULL")
            return
        except duckdb.InvalidInputException:
            if path != csv.path:
                raise


def pick_format(con: duckdb.DuckDBPyConnection, csv: CsvInput) -> str:
    """The file's date format: day-first evidence over all start times, formats tried on a sample."""
    layout = csv.layout
    starts = f"""
        WITH s AS (SELECT trim(string_split(line, ',')[{layout.position["start_time"] + 1}], E'{SPACE}') AS t
                   FROM lines WHERE len(string_split(line, ',')) = {layout.fields})
        SELECT t FROM s WHERE regexp_matches(t, '^\\d')"""
    slash = quote(rules.SLASH_DATE)
    total, slashed, first, second = con.execute(
        f"""SELECT count(*), count(*) FILTER (regexp_matches(t, {slash})),
                   max(TRY_CAST(regexp_extract(t, {slash}, 1) AS INTEGER)),
                   max(TRY_CAST(regexp_extract(t, {slash}, 2) AS INTEGER))
            FROM ({starts})"""
    ).fetchone()
    candidates = rules.format_candidates(
        layout, slashed >= rules.MIN_PARSED_SHARE * total, (first or 0) > 12, (second or 0) > 12, csv.source
    )
    con.execute(
        f"CREATE OR REPLACE TABLE sample AS SELECT t FROM ({starts}) "
        f"USING SAMPLE reservoir({rules.SAMPLE_VALUES} ROWS) REPEATABLE (7)"
    )

    def share_of(fmt: str) -> float:
        separator = "/" if "/" in fmt else "-"
        with_separator, parsed, total = con.execute(
            "SELECT count(*) FILTER (contains(t, ?)), count(*) FILTER (year(try_strptime(t, ?)) >= ?), "
            "count(*) FROM sample",
            [separator, fmt, rules.MIN_YEAR],
        ).fetchone()
        return parsed / total if with_separator else 0.0

    return rules.pick_format(share_of, candidates, csv.source)


def insert_checked(con: duckdb.DuckDBPyConnection, number: int, csv: CsvInput, fmt: str) -> None:
    """Parse and check the loaded lines; append them to ``checked`` with their first failing check."""
    layout, n = csv.layout, csv.layout.fields
    field = {name: f"clean(f[{i + 1}])" for name, i in layout.position.items()}
    lengths = " OR ".join(f"strlen(f[{i + 1}]) > {rules.MAX_FIELD_BYTES}" for i in layout.position.values())
    labels = " ".join(f"WHEN {quote(k)} THEN {quote(v)}" for k, v in rules.LABELS.items())
    stations, station_checks = [], []
    for side in ("start", "end"):
        stations.append(f"station_name({field[f'{side}_station_name']}) AS {side}_station_name")
        if layout.has_station_ids:
            ids = field[f"{side}_station_id"]
            stations.append(f"as_int({ids}, {UNSIGNED}) AS {side}_station_id")
            station_checks += [
                f"WHEN {ids} IS NULL THEN 'missing_station_id'",
                f"WHEN bad_int({ids}, {UNSIGNED}) THEN 'bad_station_id'",
            ]
        else:
            stations.append(f"NULL::BIGINT AS {side}_station_id")
            station_checks.append(f"WHEN {field[f'{side}_station_name']} IS NULL THEN 'missing_station'")
    bike = f"as_int({field['bike_id']}, {UNSIGNED})" if "bike_id" in field else "NULL::BIGINT"
    model = field.get("bike_model", "NULL::VARCHAR")
    con.execute(f"""
    INSERT INTO checked
    WITH split AS (
        SELECT rowid AS pos, line, string_split(line, ',') AS f FROM lines
    ), shaped AS (
        SELECT *, len(f) > {n} AND trim(array_to_string(f[{n + 1}:], ''), E'{SPACE}') = '' AS repaired
        FROM split
        WHERE len(f) = {n} OR trim(line, E'{SPACE},') <> ''
    ), parsed AS (
        SELECT pos, line, repaired, len(f) <> {n} AND NOT repaired AS odd, {lengths} AS long_field,
            {field["trip_id"]} AS trip_text, {field["start_time"]} AS start_text,
            {field["end_time"]} AS end_text, {field["duration_s"]} AS duration_text,
            try_strptime(start_text, {quote(fmt)}) AS start_time,
            try_strptime(end_text, {quote(fmt)}) AS end_time,
            as_int(duration_text, {SIGNED}) AS duration_s, {field["user_type"]} AS label_text,
            CASE lower(label_text) {labels} END AS user_type,
            {", ".join(stations)}, {bike} AS bike_id, {model} AS bike_model,
            CASE
                WHEN odd THEN 'field_count'
                WHEN long_field THEN 'field_too_long'
                WHEN trip_text IS NULL THEN 'missing_trip_id'
                WHEN bad_int(trip_text, {UNSIGNED}) THEN 'bad_trip_id'
                WHEN start_text IS NULL THEN 'missing_start_time'
                WHEN start_time IS NULL THEN 'bad_start_time'
                WHEN end_text IS NULL THEN 'missing_end_time'
                WHEN end_time IS NULL THEN 'bad_end_time'
                WHEN duration_text IS NULL THEN 'missing_duration'
                WHEN bad_int(duration_text, {SIGNED}) THEN 'bad_duration'
                {" ".join(station_checks)}
                WHEN label_text IS NULL THEN 'missing_user_type'
                WHEN user_type IS NULL THEN 'unknown_user_type:' || label_text
                WHEN duration_s <= 0 THEN 'nonpositive_duration'
                WHEN duration_s > {rules.MAX_DURATION_S} THEN 'too_long'
                WHEN end_time < start_time THEN 'end_before_start'
                WHEN duration_s < {rules.MIN_DURATION_S} THEN 'too_short'
            END AS reason
        FROM shaped
    )
    SELECT {number}, pos, repaired, as_int(trip_text, {UNSIGNED}), start_time, end_time, duration_s,
        start_station_id, start_station_name, end_station_id, end_station_name, bike_id, bike_model,
        user_type, {quote(csv.source)}, reason, line
    FROM parsed
    """)


FEATURES = """
    SELECT trip_id, start_time, end_time, duration_s, start_station_id, start_station_name,
        end_station_id, end_station_name, bike_id, bike_model, user_type, source_file,
        hour(start_time)::TINYINT AS hour, (isodow(start_time) - 1)::TINYINT AS weekday,
        month(start_time)::TINYINT AS month, coalesce(isodow(start_time) >= 6, false)::TINYINT AS is_weekend,
        coalesce(start_time::DATE IN (SELECT day FROM holidays), false)::TINYINT AS is_holiday,
        coalesce(start_station_id = end_station_id, start_station_name = end_station_name, false)::TINYINT
            AS round_trip
    FROM checked ANTI JOIN duplicates USING (file_no, pos)
    WHERE reason IS NULL
"""
# Only the keys of the repeated kept rows: the window reads four narrow columns, not the whole table.
DUPLICATES = """
    CREATE TABLE duplicates AS SELECT file_no, pos FROM checked WHERE reason IS NULL
    QUALIFY row_number() OVER (PARTITION BY trip_id ORDER BY file_no, repaired, pos) > 1
"""


def clean_input(input_dir: str | Path, output: str | Path) -> dict[str, object]:
    """Clean every CSV under ``input_dir``; write trips and quarantine Parquet; return the counts."""
    quarantine_path = str(output).removesuffix(".parquet") + ".quarantine.parquet"
    with tempfile.TemporaryDirectory(prefix="bench-duckdb-") as tmp, duckdb.connect() as con:
        scratch = Path(tmp)
        con.execute(f"SET temp_directory = {quote(str(scratch / 'spill'))}")
        con.execute(MACROS)
        con.execute(CHECKED)
        for number, csv in enumerate(list_csvs(input_dir, scratch)):
            load_lines(con, csv, scratch)
            insert_checked(con, number, csv, pick_format(con, csv))
        con.execute("DROP TABLE lines")
        con.execute(DUPLICATES)
        years = [row[0] for row in con.execute("SELECT DISTINCT year(start_time) FROM checked").fetchall()]
        holidays = rules.holiday_dates([year for year in years if year is not None])
        con.execute("CREATE TABLE holidays AS SELECT unnest(?::DATE[]) AS day", [holidays])
        con.execute(f"COPY ({FEATURES}) TO {quote(str(output))} (FORMAT parquet)")
        con.execute(f"""COPY (
            SELECT source_file, coalesce(reason, 'duplicate_trip_id') AS reason, line AS raw FROM checked
            WHERE reason IS NOT NULL OR (file_no, pos) IN (SELECT (file_no, pos) FROM duplicates)
            ) TO {quote(quarantine_path)} (FORMAT parquet)""")
        kept = con.execute("SELECT count(*) FROM read_parquet(?)", [str(output)]).fetchone()[0]
        by_reason = con.execute(f"""
            SELECT split_part(reason, ':', 1), count(*) FROM read_parquet({quote(quarantine_path)})
            GROUP BY ALL""").fetchall()
    return rules.summary(kept, dict(by_reason))
