#!/usr/bin/env python3
"""Runs encore's current-dialect ClickHouse DDL on a real ClickHouse engine (chdb, in process)
and reads encore lakes with ClickHouse's file() table function.

usage: check_clickhouse_current.py --tool target/debug/examples/clickhouse_ddl
           [--events 2000] [--seed 7] [--lake LAKE_DIR --verify VERIFY_JSON]...

Needs the `chdb` package (`python3 -m pip install chdb`); installs nothing itself.

1. DDL. `clickhouse_ddl ddl` prints exactly the statements `encore clickhouse setup` sends to a
   server of 21.12 or later (Dialect::Modern). They run in order in a chdb session with a temporary
   path. The one thing chdb cannot do is start a Kafka consumer: each queue's CREATE is run as it
   is, which must either succeed or fail only when the engine starts its consumers ("Shutdown was
   called", after ClickHouse has validated the engine and its settings); the table is then read
   back (columns, and virtual columns with their types as the Kafka engine declares them) and
   replaced by a Null-engine table with the same columns plus the virtual columns the views read.
   encore's own drift detection (`clickhouse_ddl drift`, the code behind `encore clickhouse
   status`) must then find every object as expected, the real Kafka queue included.
2. Messages. `clickhouse_ddl messages` gives the simulator's events, the simulator's malformed
   records (`--inject malformed` kinds) and the simple topic's messages; this script adds a few
   more broken ones. Each record is parsed as the Kafka engine parses a message in
   kafka_handle_error_mode='stream': with ClickHouse's JSONEachRow input format and the queue's
   columns; a record that fails gives one row of default values with `_error` (the exception)
   and `_raw_message` (the record); a record that parses has both empty; an empty record (Kafka
   hands none to the format) gives no row. The rows, with `_topic/_partition/_offset/
   _timestamp_ms`, are inserted into the queue stand-in in one block, which runs the views.
   Then, row for row: every record expected to be stored is in the typed table (FINAL), each
   column equal to the value taken from the record's JSON; every record expected to be rejected
   is in the errors table with its Kafka coordinates (its raw bytes and ClickHouse's error for a
   parse failure); nothing else is in either table.
3. Lakes. For each `--lake DIR --verify JSON` (the output of `encore verify --lake DIR --json`),
   ClickHouse's file('DIR/<table>/**/*.parquet', Parquet) must give the same rows per event type,
   per date, per file, and the same number of distinct event ids.

Exits 1 with a message per mismatch.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid

import chdb
from chdb import session as chsession

DATABASE = "music"
EVENTS_TOPIC = "music_events"
SIMPLE_TOPIC = "my_topic"
STAGE_DB = "encore_check_stage"
# Kafka message timestamps of the fed records (2026-01-02T00:00:00Z + index ms).
KAFKA_TS_BASE_MS = 1_767_312_000_000
PARTITIONS = 3

failures = []


SHOWN = 40


def fail(msg):
    failures.append(msg)
    if len(failures) <= SHOWN:
        print("MISMATCH: " + msg)
    elif len(failures) == SHOWN + 1:
        print(f"MISMATCH: ... (only the first {SHOWN} are shown)")


def lit(data):
    """A ClickHouse string literal holding exactly `data` (bytes or str); ASCII only."""
    if isinstance(data, str):
        data = data.encode()
    out = ["'"]
    for b in data:
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == "'":
            out.append("\\'")
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append("\\x%02X" % b)
    out.append("'")
    return "".join(out)


def ident(name):
    return "`" + name.replace("`", "") + "`"


class Engine:
    def __init__(self, path):
        self.s = chsession.Session(path)
        # 64-bit integers as JSON numbers; one parsing thread per record, as the Kafka engine.
        self.s.query("SET output_format_json_quote_64bit_integers = 0")
        self.s.query("SET input_format_parallel_parsing = 0")

    def run(self, sql):
        """Runs a statement; raises RuntimeError with ClickHouse's message as bytes in .raw."""
        try:
            return self.s.query(sql)
        except UnicodeDecodeError as e:  # an error message quoting non-UTF-8 input
            err = RuntimeError(e.object.decode("utf-8", "replace"))
            err.raw = bytes(e.object)
            raise err from None
        except Exception as e:  # chdb raises RuntimeError / ChdbError
            err = RuntimeError(str(e))
            err.raw = str(e).encode()
            raise err from None

    def rows(self, sql):
        text = self.s.query(sql, "JSONEachRow").bytes().decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def value(self, sql):
        r = self.rows(sql)
        return next(iter(r[0].values())) if r else None

    def close(self):
        try:
            self.s.close()
        except Exception:
            pass


def tool(args, *cmd, stdin=None):
    p = subprocess.run(
        [args.tool, *cmd], input=stdin, capture_output=True, check=False
    )
    if p.returncode != 0:
        sys.exit(f"{args.tool} {' '.join(cmd)} failed: {p.stderr.decode(errors='replace')}")
    return p.stdout


# ---------------------------------------------------------------------------------------------
# 1. DDL


def strip_literals(sql):
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", sql)


def view_reads(sql):
    """The table after FROM and the underscore identifiers (virtual columns) a view uses."""
    body = strip_literals(sql)
    m = re.search(r"\bFROM\s+([`\w.]+)", body, re.I)
    src = m.group(1).replace("`", "") if m else None
    virtuals = set(re.findall(r"(?<![\w.`])(_[A-Za-z][\w.]*)", body))
    return src, virtuals


def describe(ch, db, table, virtual=False):
    extra = " SETTINGS describe_include_virtual_columns = 1" if virtual else ""
    rows = ch.rows(f"DESCRIBE TABLE {ident(db)}.{ident(table)}{extra}")
    return [(r["name"], r["type"], bool(r.get("is_virtual", 0))) for r in rows]


def table_row(ch, db, table):
    r = ch.rows(
        "SELECT name, engine, engine_full, sorting_key, partition_key, create_table_query "
        f"FROM system.tables WHERE database = {lit(db)} AND name = {lit(table)}"
    )
    return r[0] if r else None


def apply_ddl(ch, ddl):
    """Runs the statements; returns {queue name: stand-in info} and the live state for drift."""
    stmts = ddl["statements"]
    db = ddl["database"]
    reads = {}  # queue "db.name" -> virtual columns its views read
    for st in stmts:
        if st["role"] in ("view", "errors_view"):
            src, virt = view_reads(st["sql"])
            reads.setdefault(src, set()).update(virt)
    queues = {}
    live = {}
    for st in stmts:
        name = st["name"]
        if st["role"] != "queue":
            try:
                ch.run(st["sql"])
            except RuntimeError as e:
                fail(f"{st['role']} {name}: ClickHouse {chdb_version()} refused encore's DDL:\n"
                     f"{st['sql']}\n--> {e}")
            continue
        # The queue: exactly encore's CREATE first.
        if "ENGINE = Kafka" not in st["sql"]:
            fail(f"queue {name} is not a Kafka engine table:\n{st['sql']}")
            continue
        outcome = "created"
        try:
            ch.run(st["sql"])
        except RuntimeError as e:
            if "Shutdown was called" in str(e):
                outcome = "validated (chdb starts no Kafka consumer: 'Shutdown was called')"
            else:
                fail(f"queue {name}: ClickHouse refused encore's Kafka table:\n{st['sql']}\n--> {e}")
                continue
        row = table_row(ch, db, name)
        if row is None or row["engine"] != "Kafka":
            fail(f"queue {name}: no Kafka table after its CREATE ({row})")
            continue
        cols = describe(ch, db, name, virtual=True)
        data_cols = [(n, t) for n, t, v in cols if not v]
        virtuals = {n: t for n, t, v in cols if v}
        row["columns"] = data_cols
        live[name] = row
        wanted = sorted(reads.get(f"{db}.{name}", set()))
        missing = [v for v in wanted if v not in virtuals]
        if missing:
            fail(f"the views of {name} read {missing}, which this Kafka table does not have "
                 f"(it has {sorted(virtuals)})")
            continue
        print(f"  {name}: Kafka engine {outcome}; views read {', '.join(wanted)}")
        ch.run(f"DROP TABLE {ident(db)}.{ident(name)} SYNC")
        stub_cols = data_cols + [(v, virtuals[v]) for v in wanted]
        body = ",\n    ".join(f"{ident(n)} {t}" for n, t in stub_cols)
        ch.run(f"CREATE TABLE {ident(db)}.{ident(name)}\n(\n    {body}\n)\nENGINE = Null")
        ch.run(
            f"CREATE TABLE {ident(STAGE_DB)}.{ident(name)}\n(\n    {body},\n    __msg UInt32\n)\n"
            "ENGINE = StripeLog"
        )
        queues[name] = {
            "data": data_cols,
            "virtual": wanted,
            "types": virtuals,
            "stage_structure": ", ".join(f"{ident(n)} {t}" for n, t in stub_cols) + ", __msg UInt32",
            "dataset": st["dataset"],
        }
    # Live state of everything else, as `setup::inspect` reads it.
    for st in stmts:
        if st["role"] in ("database", "queue"):
            continue
        row = table_row(ch, db, st["name"])
        if row is None:
            continue
        row["columns"] = [(n, t) for n, t, _ in describe(ch, db, st["name"])] if st["columns"] else []
        live[st["name"]] = row
    return queues, live


def check_drift(args, live):
    report = json.loads(
        tool(args, "drift", *target_args(args), stdin=json.dumps(list(live.values())).encode())
    )
    for o in report:
        if not o["present"]:
            fail(f"{o['name']} is missing after setup")
        for d in o["drift"]:
            fail(f"encore's drift detection on ClickHouse {chdb_version()}: {o['name']}: {d}")
    return len(report)


# ---------------------------------------------------------------------------------------------
# 2. Messages and their expected fate

STORE, PARSE_ERROR, VIEW_REJECT, DROPPED = "stored", "parse error", "rejected by the view", "dropped"

# The simulator's malformed kinds (src/sim/inject.rs), as a current ClickHouse treats them.
SIM_KINDS = {
    "invalid_json": PARSE_ERROR,
    "not_utf8": PARSE_ERROR,
    # Kafka hands a zero-length message to no format: no row, no error row (ClickHouse's
    # KafkaSource skips messages that give no rows).
    "empty": DROPPED,
    "missing_field": VIEW_REJECT,  # no event_id: parses with the zero UUID
    # "event_type_id":"3": ClickHouse's JSON input reads numbers in quotes, so the record is a
    # valid event to ClickHouse (encore's sink rejects it). It carries the id of an event that
    # is also on the topic: ReplacingMergeTree keeps one of the two.
    "wrong_type": STORE,
    "unknown_event_type": PARSE_ERROR,  # 'track_teleport' is not in the Enum8
    "type_mismatch": VIEW_REJECT,
}


def edit(raw, f):
    o = json.loads(raw)
    f(o)
    return json.dumps(o, ensure_ascii=False, separators=(",", ":")).encode()


def extra_messages(events, people):
    """Broken records this script adds: (topic, kind, bytes, fate)."""
    ev, ev2, p = events[0], events[len(events) // 2], people[0] if people else None
    out = [
        (EVENTS_TOPIC, "x_not_json", b"not json at all", PARSE_ERROR),
        (EVENTS_TOPIC, "x_track_id_text", edit(ev, lambda o: o.update(track_id="abc")), PARSE_ERROR),
        (EVENTS_TOPIC, "x_liked_text", edit(ev, lambda o: o.update(liked="maybe")), PARSE_ERROR),
        (EVENTS_TOPIC, "x_bad_uuid", edit(ev, lambda o: o.update(event_id="not-a-uuid")), PARSE_ERROR),
        (EVENTS_TOPIC, "x_bad_ipv4", edit(ev, lambda o: o.update(ipv4="1.2.3")), PARSE_ERROR),
        (EVENTS_TOPIC, "x_empty_object", b"{}", VIEW_REJECT),
        (EVENTS_TOPIC, "x_no_time", edit(ev, lambda o: (o.pop("ts_ms"), o.pop("ts"))), VIEW_REJECT),
        # The same event delivered twice (a producer retry): one row after FINAL.
        (EVENTS_TOPIC, "x_duplicate", ev2, STORE),
    ]
    if p:
        out += [
            (SIMPLE_TOPIC, "x_not_json", p[: len(p) // 2], PARSE_ERROR),
            (SIMPLE_TOPIC, "x_no_uuid", edit(p, lambda o: o.pop("uuid")), VIEW_REJECT),
            # An unparsable time is stored as the zero time (the view's ...OrZero).
            (SIMPLE_TOPIC, "x_bad_timestamp",
             edit(p, lambda o: o.update(timestamp="yesterday", uuid=str(uuid.uuid4()))), STORE),
        ]
    return out


def fate(topic, kind):
    if kind in ("event", "person"):
        return STORE
    if kind in SIM_KINDS:
        return SIM_KINDS[kind]
    raise SystemExit(f"no expectation for records of kind {kind} on {topic}")


def feed(ch, db, queues, topic_queue, messages, workdir):
    """Parses each record as the Kafka engine would and inserts each queue's rows in one block.

    A record's row (parsed columns, virtual columns, its index) is selected as RowBinary and
    appended to a file per queue, which is loaded into a stage table at the end: one query per
    record, none of which grows with the number of records."""
    counters = {}
    files = {q: open(os.path.join(workdir, f"{q}.rowbinary"), "wb") for q in queues}
    try:
        for i, m in enumerate(messages):
            q = topic_queue[m["topic"]]
            part = i % PARTITIONS
            off = counters.get((m["topic"], part), 0)
            counters[(m["topic"], part)] = off + 1
            m.update(partition=part, offset=off, ts_ms=KAFKA_TS_BASE_MS + i, index=i)
            info = queues[q]
            if not m["bytes"]:
                m["outcome"] = "no row"
                continue
            virt = {
                "_topic": lit(m["topic"]),
                "_key": "''",
                "_partition": str(part),
                "_offset": str(off),
                "_timestamp": f"toDateTime(intDiv({m['ts_ms']}, 1000))",
                "_timestamp_ms": f"fromUnixTimestamp64Milli({m['ts_ms']})",
                "_raw_message": "''",
                "_error": "''",
                "_table": lit(q),
                "_headers.name": "[]",
                "_headers.value": "[]",
            }
            structure = ", ".join(f"{ident(n)} {t}" for n, t in info["data"])
            exprs = ", ".join(
                [f"CAST({virt[v]}, {lit(info['types'][v])})" for v in info["virtual"]]
                + [f"toUInt32({i})"]
            )
            try:
                row = ch.s.query(
                    f"SELECT *, {exprs} FROM format(JSONEachRow, {lit(structure)}, {lit(m['bytes'])})",
                    "RowBinary",
                ).bytes()
                m["outcome"] = "parsed" if row else "no row"
                files[q].write(row)
            except UnicodeDecodeError as e:
                m["outcome"], m["error"] = "parse error", bytes(e.object)
            except Exception as e:
                m["outcome"], m["error"] = "parse error", str(e).encode()
            if m["outcome"] == "parse error":
                # One row of default values with the record and the error.
                virt["_raw_message"] = lit(m["bytes"])
                virt["_error"] = lit(m["error"])
                vcols = ", ".join(ident(n) for n in info["virtual"] + ["__msg"])
                vexprs = ", ".join([virt[v] for v in info["virtual"]] + [str(i)])
                ch.run(f"INSERT INTO {ident(STAGE_DB)}.{ident(q)} ({vcols}) SELECT {vexprs}")
    finally:
        for f in files.values():
            f.close()
    for q, info in queues.items():
        stage = f"{ident(STAGE_DB)}.{ident(q)}"
        names = [n for n, _ in info["data"]] + info["virtual"]
        cols = ", ".join(ident(n) for n in names)
        path = os.path.join(workdir, f"{q}.rowbinary")
        if os.path.getsize(path):
            ch.run(f"INSERT INTO {stage} SELECT * FROM file({lit(path)}, RowBinary, "
                   f"{lit(info['stage_structure'])})")
        ch.run(f"INSERT INTO {ident(db)}.{ident(q)} ({cols}) SELECT {cols} FROM {stage} ORDER BY __msg")


def ms_text(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (ms % 1000)


def iso_ms(text):
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return 0
    return int(t.timestamp() * 1000)


def expected_value(col, ty, doc, m):
    """The value a stored record's column must have, from the record itself."""
    base = re.sub(r"^(Nullable|LowCardinality)\((.*)\)$", r"\2", ty)
    if col == "kafka_topic":
        return m["topic"]
    if col == "kafka_partition":
        return m["partition"]
    if col == "kafka_offset":
        return m["offset"]
    if col == "kafka_timestamp":
        return ms_text(m["ts_ms"])
    if col == "event_time" and "event_time" not in doc:
        return ms_text(int(doc.get("ts_ms", 0)))
    if col not in doc:
        if ty.startswith("Nullable("):
            return None
        raise KeyError(f"no expectation for column {col} {ty}")
    v = doc[col]
    if base.startswith("DateTime64"):
        return ms_text(v if isinstance(v, int) else iso_ms(v))
    if re.match(r"U?Int\d+$", base):
        return int(v)
    if base == "Bool":
        return bool(v)
    return str(v)


def check_dataset(ch, db, table, errors_table, columns, key, msgs, t0, t1):
    """Row for row: the stored records in `table` (FINAL), the rejected ones in `errors_table`."""
    stored = [m for m in msgs if m["fate"] == STORE]
    rejected = [m for m in msgs if m["fate"] in (PARSE_ERROR, VIEW_REJECT)]
    # Records that parse and pass the view; one row per key after FINAL.
    want = {}
    for m in stored:
        doc = json.loads(m["bytes"])
        row = {}
        for col, ty in columns:
            if col == "ingested_at":
                continue
            try:
                row[col] = expected_value(col, ty, doc, m)
            except KeyError as e:
                fail(f"{table}: {e.args[0]} (record {m['kind']} #{m['index']})")
                return
        want.setdefault(str(row[key]), []).append(row)
    have = ch.rows(f"SELECT * FROM {ident(db)}.{ident(table)} FINAL")
    have_by = {}
    for r in have:
        have_by.setdefault(str(r[key]), []).append(r)
    for k in sorted(set(want) - set(have_by)):
        fail(f"{table}: {key} {k} was sent ({len(want[k])} record(s)) but is not stored")
    for k in sorted(set(have_by) - set(want)):
        fail(f"{table}: unexpected row {have_by[k][0]}")
    checked = 0
    for k in sorted(set(want) & set(have_by)):
        if len(have_by[k]) != 1:
            fail(f"{table}: {len(have_by[k])} rows for {key} {k} after FINAL")
            continue
        row = have_by[k][0]
        if set(row) != {c for c, _ in columns}:
            fail(f"{table}: columns {sorted(row)} differ from the DDL's {[c for c, _ in columns]}")
            return
        ing = row.get("ingested_at")
        if ing is not None and not (t0 <= ing <= t1):
            fail(f"{table}: ingested_at {ing} of {key} {k} is outside the run ({t0} .. {t1})")
        # Records delivered twice: the row is one of them (they differ only in Kafka coordinates).
        diffs = None
        for cand in want[k]:
            d = [
                f"{c}: stored {row.get(c)!r}, sent {v!r}"
                for c, v in cand.items()
                if row.get(c) != v
            ]
            if diffs is None or len(d) < len(diffs):
                diffs = d
        if diffs:
            fail(f"{table}: {key} {k}: " + "; ".join(diffs))
        checked += 1
    # Errors: one row per rejected record, by Kafka coordinates.
    errs = ch.rows(
        f"SELECT kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, "
        f"hex(raw_message) AS raw_hex, hex(error) AS error_hex, toString(received_at) AS received_at FROM {ident(db)}.{ident(errors_table)}"
    )
    err_by = {(e["kafka_topic"], e["kafka_partition"], e["kafka_offset"]): e for e in errs}
    if len(err_by) != len(errs):
        fail(f"{errors_table}: {len(errs) - len(err_by)} records have more than one row")
    want_err = {(m["topic"], m["partition"], m["offset"]): m for m in rejected}
    for c in sorted(set(want_err) - set(err_by)):
        m = want_err[c]
        fail(f"{errors_table}: the {m['kind']} record at {c} ({m['fate']}) is not there")
    for c in sorted(set(err_by) - set(want_err)):
        fail(f"{errors_table}: unexpected row {err_by[c]}")
    view_texts = set()
    for c in sorted(set(want_err) & set(err_by)):
        m, e = want_err[c], err_by[c]
        raw, err = bytes.fromhex(e["raw_hex"]), bytes.fromhex(e["error_hex"])
        if not (t0 <= e["received_at"] <= t1):
            fail(f"{errors_table} {c}: received_at {e['received_at']} is outside the run ({t0} .. {t1})")
        if e["kafka_timestamp"] != ms_text(m["ts_ms"]):
            fail(f"{errors_table} {c}: kafka_timestamp {e['kafka_timestamp']}, sent {ms_text(m['ts_ms'])}")
        if m["fate"] == PARSE_ERROR:
            if m["outcome"] != "parse error":
                fail(f"{errors_table} {c}: the {m['kind']} record was expected to fail parsing, "
                     "but ClickHouse parsed it")
            if raw != m["bytes"]:
                fail(f"{errors_table} {c}: raw_message {raw!r}, sent {m['bytes']!r}")
            if err != m.get("error"):
                fail(f"{errors_table} {c}: error {err!r}, the parser said {m.get('error')!r}")
        else:
            # The Kafka engine fills _raw_message only for messages that fail to parse.
            if raw != b"":
                fail(f"{errors_table} {c}: raw_message {raw!r} for a record that parsed")
            if not err:
                fail(f"{errors_table} {c}: empty error for the {m['kind']} record")
            view_texts.add(err)
    if len(view_texts) > 1:
        fail(f"{errors_table}: records the view rejects have different errors: {view_texts}")
    return checked, len(err_by), view_texts


def chdb_version():
    return getattr(chdb, "engine_version", "?")


def target_args(args):
    return ["--database", DATABASE, "--events-topic", EVENTS_TOPIC, "--simple-topic", SIMPLE_TOPIC]


def check_ddl_and_messages(args, workdir):
    ddl = json.loads(tool(args, "ddl", *target_args(args)))
    if ddl["dialect"] != "modern":
        sys.exit(f"expected the modern dialect, got {ddl['dialect']}")
    db = ddl["database"]
    ch = Engine(os.path.join(workdir, "chdb"))
    try:
        ch.run(f"CREATE DATABASE {ident(STAGE_DB)}")
        print(f"DDL: {len(ddl['statements'])} statements of encore's modern dialect")
        queues, live = apply_ddl(ch, ddl)
        if failures:
            return
        n = check_drift(args, live)
        print(f"  encore's drift detection: {n} objects checked")
        topic_queue = {}
        for st in ddl["statements"]:
            if st["role"] == "queue":
                topic_queue[EVENTS_TOPIC if st["dataset"] == "events" else SIMPLE_TOPIC] = st["name"]
        lines = tool(args, "messages", "--events", str(args.events), "--seed", str(args.seed),
                     "--people", str(args.people), "--events-topic", EVENTS_TOPIC,
                     "--simple-topic", SIMPLE_TOPIC).decode().splitlines()
        msgs = []
        for line in lines:
            o = json.loads(line)
            msgs.append({"topic": o["topic"], "kind": o["kind"], "bytes": bytes.fromhex(o["hex"])})
        events = [m["bytes"] for m in msgs if m["kind"] == "event"]
        people = [m["bytes"] for m in msgs if m["kind"] == "person"]
        for topic, kind, raw, f in extra_messages(events, people):
            msgs.append({"topic": topic, "kind": kind, "bytes": raw, "fate": f})
        for m in msgs:
            if "fate" not in m:
                m["fate"] = fate(m["topic"], m["kind"])
        t0 = ch.value("SELECT toString(now('UTC'))")
        started = time.monotonic()
        feed(ch, db, queues, topic_queue, msgs, workdir)
        t1 = ch.value("SELECT toString(now('UTC'))")
        print(f"  fed {len(msgs)} records in {time.monotonic() - started:.1f}s "
              f"({sum(m['outcome'] == 'parse error' for m in msgs if 'outcome' in m)} parse errors)")
        for topic, stmts in ((EVENTS_TOPIC, "events"), (SIMPLE_TOPIC, "simple")):
            storage = next(s for s in ddl["statements"] if s["dataset"] == stmts and s["role"] == "storage")
            errors = next(s for s in ddl["statements"] if s["dataset"] == stmts and s["role"] == "errors")
            key = "event_id" if stmts == "events" else "uuid"
            sub = [m for m in msgs if m["topic"] == topic]
            res = check_dataset(ch, db, storage["name"], errors["name"], storage["columns"], key, sub, t0, t1)
            if res:
                stored, errs, texts = res
                fates = {}
                for m in sub:
                    fates[m["fate"]] = fates.get(m["fate"], 0) + 1
                print(f"  {topic}: {len(sub)} records ({', '.join(f'{v} {k}' for k, v in sorted(fates.items()))}): "
                      f"{stored} rows in {storage['name']} compared column by column, "
                      f"{errs} in {errors['name']}")
                for t in texts:
                    print(f"    error of records the view rejects: {t.decode(errors='replace')!r}")
    finally:
        ch.close()


# ---------------------------------------------------------------------------------------------
# 3. Lakes


def event_types(ddl_columns):
    ty = dict(ddl_columns)["event_type"]
    return {int(i): n for n, i in re.findall(r"'([^']*)'\s*=\s*(\d+)", ty)}


def check_lake(ch, lake, verify_path, names):
    rep = json.load(open(verify_path))
    table = rep.get("table") or EVENTS_TOPIC
    glob = os.path.join(os.path.abspath(lake), table, "**", "*.parquet")
    src = f"file({lit(glob)}, Parquet)"
    got = {}
    for r in ch.rows(f"SELECT event_type_id AS id, event_type AS name, count() AS n FROM {src} "
                     "GROUP BY id, name ORDER BY id"):
        if names.get(r["id"]) != r["name"]:
            fail(f"lake {lake}: {r['n']} rows with event_type_id {r['id']} named {r['name']!r}")
        got[r["id"]] = got.get(r["id"], 0) + int(r["n"])
    want = {i + 1: n for i, n in enumerate(rep["per_type"]) if n}
    for i in sorted(set(got) | set(want)):
        if got.get(i, 0) != want.get(i, 0):
            fail(f"lake {lake}: {names.get(i, i)}: ClickHouse file() reads {got.get(i, 0)} rows, "
                 f"encore verify counted {want.get(i, 0)}")
    summary = ch.rows(f"SELECT count() AS rows, uniqExact(event_id) AS ids FROM {src}")[0]
    if int(summary["rows"]) != rep["rows"]:
        fail(f"lake {lake}: {summary['rows']} rows in ClickHouse, {rep['rows']} in verify")
    if int(summary["ids"]) != rep["distinct_events"]:
        fail(f"lake {lake}: {summary['ids']} distinct event ids in ClickHouse, "
             f"{rep['distinct_events']} in verify")
    per_file = {}
    for r in ch.rows(f"SELECT _path AS path, toString(date) AS date, count() AS n FROM {src} "
                     "GROUP BY path, date"):
        rel = os.path.relpath(r["path"], os.path.join(os.path.abspath(lake), table))
        per_file[rel] = (r["date"], int(r["n"]))
    want_files = {f["path"]: (f["date"], f["rows"]) for f in rep["files"]}
    for p in sorted(set(per_file) | set(want_files)):
        if per_file.get(p) != want_files.get(p):
            fail(f"lake {lake}: file {p}: ClickHouse reads {per_file.get(p)}, verify {want_files.get(p)}")
    dates = {}
    for d, n in per_file.values():
        dates[d] = dates.get(d, 0) + n
    for d in sorted(set(dates) | set(rep["per_date"])):
        if dates.get(d, 0) != rep["per_date"].get(d, {}).get("rows", 0):
            fail(f"lake {lake}: date {d}: {dates.get(d, 0)} rows in ClickHouse, "
                 f"{rep['per_date'].get(d, {}).get('rows', 0)} in verify")
    if rep.get("problems"):
        print(f"  note: verify reported {len(rep['problems'])} problems in {lake}")
    print(f"  lake {lake}: {summary['rows']} rows, {summary['ids']} event ids, {len(per_file)} files, "
          f"{len(dates)} dates; per type: "
          + ", ".join(f"{names.get(i, i)} {got.get(i, 0)}" for i in sorted(got)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tool", required=True, help="the clickhouse_ddl example binary")
    ap.add_argument("--events", type=int, default=2000, help="valid events to feed")
    ap.add_argument("--people", type=int, default=100, help="simple-topic messages to feed")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--lake", action="append", default=[], help="an encore lake directory")
    ap.add_argument("--verify", action="append", default=[],
                    help="`encore verify --lake DIR --json` of the --lake at the same position")
    args = ap.parse_args()
    if len(args.lake) != len(args.verify):
        ap.error("give one --verify per --lake")
    started = time.monotonic()
    print(f"chdb {chdb.__version__}, ClickHouse {chdb_version()}")
    with tempfile.TemporaryDirectory(prefix="encore-chdb-") as workdir:
        check_ddl_and_messages(args, workdir)
        if args.lake:
            ddl = json.loads(tool(args, "ddl", *target_args(args)))
            storage = next(s for s in ddl["statements"]
                           if s["role"] == "storage" and s["dataset"] == "events")
            names = event_types(storage["columns"])
            ch = Engine(os.path.join(workdir, "chdb-lake"))
            try:
                print("Lakes, read with ClickHouse's file():")
                for lake, rep in zip(args.lake, args.verify):
                    check_lake(ch, lake, rep, names)
            finally:
                ch.close()
    took = time.monotonic() - started
    if failures:
        print(f"current ClickHouse check: FAILED ({len(failures)} mismatches, {took:.1f}s)")
        return 1
    print(f"current ClickHouse check: OK ({took:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
