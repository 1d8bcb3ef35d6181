#!/usr/bin/env python3
"""Reads an encore lake with pyarrow as a Hive-partitioned dataset and checks it.

usage: check_lake.py LAKE_DIR EXPECTED_ROWS [TABLE]

Fails (exit 1) unless the dataset has exactly EXPECTED_ROWS rows, no duplicate event id, and
every row's event_time falls on its date= partition (UTC). encore's bookkeeping under _encore/
must be skipped by pyarrow's defaults.
"""
import sys

import pyarrow.compute as pc
import pyarrow.dataset as ds


def main() -> int:
    lake, expected = sys.argv[1], int(sys.argv[2])
    table_name = sys.argv[3] if len(sys.argv) > 3 else "music_events"
    data = ds.dataset(f"{lake}/{table_name}", format="parquet", partitioning="hive")
    table = data.to_table(columns=["event_id", "event_time", "event_type", "date"])
    rows = table.num_rows
    distinct = len(pc.unique(table["event_id"]))
    day = pc.strftime(table["event_time"], format="%Y-%m-%d")
    misplaced = rows - pc.sum(pc.equal(day, pc.cast(table["date"], "string"))).as_py()
    types = pc.value_counts(table["event_type"].combine_chunks().dictionary_decode())
    print(f"pyarrow: {rows} rows, {distinct} distinct event ids, {misplaced} in a wrong date partition")
    for item in types.to_pylist():
        print(f"  {item['values']:<26}{item['counts']:>10}")
    ok = rows == expected and distinct == rows and misplaced == 0
    print("pyarrow check: " + ("OK" if ok else f"FAILED (expected {expected} rows)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
