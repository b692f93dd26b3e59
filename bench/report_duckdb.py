"""DuckDB side of bench/report.sh: runs the report SQL pullgate prints with
`--show-sql duckdb` over the same event files, and reports wall time.
Also converts the events to Parquet (dt partitions) and prints the bytes
Athena would scan per report for Parquet and for the compressed JSON.

usage: report_duckdb.py run DATA_DIR SQL_FILE     (a `-- keep: T` block becomes a temp table T)
       report_duckdb.py scan DATA_DIR PARQUET_DIR SQL_FILE..."""

import glob
import os
import re
import sys
import time

import duckdb

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TYPES = {"int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE", "string": "VARCHAR"}


def columns():
    """The event columns, from the same DDL the other engines use."""
    ddl = open(os.path.join(ROOT, "infra/sql/events_table.sql")).read()
    body = ddl[ddl.index("events ("):ddl.index("\n)")]
    return re.findall(r"`(\w+)` (\w+)", body)


def connect(data_dir):
    con = duckdb.connect()
    spec = ", ".join(f"'{n}': '{TYPES[t]}'" for n, t in columns())
    con.execute(f"""CREATE VIEW events AS SELECT * FROM read_json('{data_dir}/events/dt=*/*.json.gz',
        format='newline_delimited', compression='gzip', hive_partitioning=true,
        hive_types={{'dt': 'VARCHAR'}}, columns={{{spec}}})""")
    return con


def blocks(path):
    """The statements of a `--show-sql` file: ("query", name, sql) per
    `-- query: NAME` marker and ("keep", table, sql) per `-- keep: TABLE`
    (with --sessions-table: the sessions, to be kept as that table)."""
    out = []
    for part in re.split(r"^-- (?=(?:query|keep): )", open(path).read(), flags=re.M)[1:]:
        header, sql = part.split("\n", 1)
        kind, name = header.split(": ", 1)
        out.append((kind, name.strip(), sql.strip().rstrip(";")))
    return out


def queries(path):
    """The report queries of a `--show-sql` file."""
    return [sql for kind, _, sql in blocks(path) if kind == "query"]


def run(data_dir, sql_file):
    con = connect(data_dir)
    started = time.time()
    rows = 0
    for kind, name, sql in blocks(sql_file):
        if kind == "keep":
            con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
        else:
            rows += len(con.execute(sql).fetchall())
    print(f"duckdb rows={rows} seconds={time.time() - started:.2f}")


def scan(data_dir, parquet_dir, sql_files):
    con = connect(data_dir)
    if not glob.glob(f"{parquet_dir}/dt=*/*.parquet"):
        con.execute(f"COPY (SELECT * FROM events) TO '{parquet_dir}' (FORMAT PARQUET, COMPRESSION SNAPPY, PARTITION_BY (dt))")
    json_bytes = sum(os.path.getsize(f) for f in glob.glob(f"{data_dir}/events/dt=*/*.json.gz"))
    meta = con.execute(f"""SELECT path_in_schema AS col, SUM(total_compressed_size) AS bytes
        FROM parquet_metadata('{parquet_dir}/dt=*/*.parquet') GROUP BY 1""").fetchall()
    col_bytes = {c: b for c, b in meta}
    for sql_file in sql_files:
        qs = queries(sql_file)
        # Athena reads the whole compressed JSON object per query, and on
        # Parquet only the column chunks a query names.
        # Columns the queries name (comments, which mention some, removed).
        code = [re.sub(r"--[^\n]*", "", q) for q in qs]
        used = [n for n, _ in columns() if any(re.search(rf'\b{n}\b', q) for q in code)]
        parquet = len(qs) * sum(col_bytes.get(n, 0) for n in used)
        js = len(qs) * json_bytes
        name = os.path.basename(sql_file).removesuffix(".sql")
        for label, b in [("compressed JSON", js), ("Parquet (snappy)", parquet)]:
            print(f"athena-scan report={name} format={label!r} queries={len(qs)} bytes={b} "
                  f"cost_usd={b / 1e12 * 5:.6f} cost_usd_per_day_scheduled={b / 1e12 * 5:.6f}")
        print(f"athena-columns report={name} {','.join(used)}")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    else:
        scan(sys.argv[2], sys.argv[3], sys.argv[4:])
