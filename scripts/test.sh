#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh machine (Rust components,
# Java 17 and Maven for Apache Kafka, pyarrow and chdb, and the real stack of scripts/stack.sh:
# Apache Kafka, s3s-fs, ClickHouse), starts the stack, runs formatting and lint checks, every
# cargo test (`--features stack-tests` adds the integration tests against the stack; plain
# `cargo test` needs no service), and
# end-to-end checks of the release binary (embedded, and through Kafka + S3 + ClickHouse), then
# stops the stack if it started it (ENCORE_KEEP_STACK=1 keeps it). Fails on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
cargo --version
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" || true
done
# Where rustup cannot install them, the rest of the suite still runs, and the log says loudly
# which check was skipped.
missing_tools=()
for t in fmt clippy; do
  cargo "$t" --version >/dev/null 2>&1 || missing_tools+=("cargo $t")
done
# Apache Kafka runs on Java 17+, and its jars come from Maven Central through Maven.
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  [[ $(id -u) -eq 0 ]] || { echo "Java 17 and Maven are needed: apt-get install -y openjdk-17-jre-headless maven" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y openjdk-17-jre-headless maven >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y openjdk-17-jre-headless maven >/dev/null; }
fi
java -version 2>&1 | head -1
for py in pyarrow chdb prometheus_client; do
  python3 -c "import $py" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check "$py"
done

step "real stack (scripts/stack.sh up: a cold install takes a few minutes, mostly building s3s-fs)"
if scripts/stack.sh status >/dev/null 2>&1; then
  echo "already up: left running afterwards"
else
  # The suite's own stack starts empty, in a state directory of its own (a user's stack data is
  # never touched): every test makes topics and buckets of its own, and after a few runs thousands
  # of partitions keep the broker replaying its logs past the start deadline.
  export ENCORE_STACK_DIR=${ENCORE_TEST_STACK_DIR:-$HOME/.cache/encore/test-stack}
  scripts/stack.sh reset
  if [[ ${ENCORE_KEEP_STACK:-0} != 1 ]]; then
    trap 'scripts/stack.sh down || true' EXIT
  fi
fi
scripts/stack.sh up
eval "$(scripts/stack.sh env)"

step "format and lint"
for t in "${missing_tools[@]}"; do
  printf '\n************************************************************\n'
  printf '*** %s is missing and rustup could not install it: NOT CHECKED ***\n' "$t"
  printf '************************************************************\n\n'
done
[[ " ${missing_tools[*]} " == *" cargo fmt "* ]] || cargo fmt --all -- --check
[[ " ${missing_tools[*]} " == *" cargo clippy "* ]] || cargo clippy --all-targets --features stack-tests -- -D warnings

step "unit and integration tests"
# stack-tests: the integration tests against the stack started above (without the feature,
# `cargo test` runs only what needs no service).
cargo test --all --no-fail-fast --features stack-tests 2>&1 | tee /tmp/encore-cargo-test.log
# A run that executed no test is a failure, not a pass.
grep -q "test result: ok. [1-9]" /tmp/encore-cargo-test.log

step "benches compile"
cargo bench --no-run

step "end to end: encore run, encore verify, pyarrow"
lake="$(mktemp -d)/lake"
cargo build --release
# The embedded default: no broker, a local lake (the stack's variables are set above).
env -u ENCORE_BROKERS -u ENCORE_S3_ENDPOINT -u ENCORE_CLICKHOUSE_URL ./target/release/encore run --users 2000 --events 200000 \
  --max-rate --seed 7 --lake "$lake" --no-progress | tee /tmp/encore-run.log
if grep -q "acknowledged by Kafka" /tmp/encore-run.log; then echo "the embedded run went to Kafka"; exit 1; fi
env -u ENCORE_S3_ENDPOINT -u ENCORE_BROKERS -u ENCORE_CLICKHOUSE_URL ./target/release/encore verify --lake "$lake"
python3 scripts/check_lake.py "$lake" 200000

step "current ClickHouse in process (chdb): encore's modern DDL row for row, and the lake through file()"
cargo build --release --example clickhouse_ddl
env -u ENCORE_S3_ENDPOINT -u ENCORE_BROKERS -u ENCORE_CLICKHOUSE_URL ./target/release/encore verify --lake "$lake" --json >/tmp/encore-verify-lake.json
python3 scripts/check_clickhouse_current.py --tool target/release/examples/clickhouse_ddl \
  --lake "$lake" --verify /tmp/encore-verify-lake.json
rm -rf "$(dirname "$lake")"

step "end to end through Kafka, S3 and ClickHouse: encore run --brokers --clickhouse-url, verify, counts"
run_id="ci-$(date +%s)-$$"
ch_db="ci_$(date +%s)_$$"
./target/release/encore run --brokers "$ENCORE_BROKERS" --topic "$run_id" --group "$run_id" \
  --lake "s3://$run_id/dev" --s3-endpoint "$ENCORE_S3_ENDPOINT" \
  --clickhouse-url "$ENCORE_CLICKHOUSE_URL" --clickhouse-database "$ch_db" \
  --simple-topic "$run_id-simple" \
  --users 1000 --events 100000 --max-rate --no-progress
# ClickHouse ingests the same topic through its Kafka engine: wait for it.
ch=(--clickhouse-url "$ENCORE_CLICKHOUSE_URL" --clickhouse-database "$ch_db" --topic "$run_id" --simple-topic "$run_id-simple")
deadline=$((SECONDS + 300))
until ./target/release/encore clickhouse query counts "${ch[@]}" >/tmp/encore-counts.log 2>&1 \
  && grep -Eq "^total +100000$" /tmp/encore-counts.log; do
  if ((SECONDS > deadline)); then cat /tmp/encore-counts.log; echo "ClickHouse did not reach 100000 events"; exit 1; fi
  sleep 2
done
cat /tmp/encore-counts.log
# verify with all three sources (ENCORE_BROKERS from the stack's env): clean and exact.
./target/release/encore verify --lake "s3://$run_id/dev" --topic "$run_id" --brokers "$ENCORE_BROKERS" \
  --clickhouse-url "$ENCORE_CLICKHOUSE_URL" --clickhouse-database "$ch_db" | tee /tmp/encore-verify.log
grep -q "verdict: CLEAN (100000 rows" /tmp/encore-verify.log
grep -q "100000 rows, 100000 distinct events; missing 0, not in the lake 0" /tmp/encore-verify.log
# The counts per event type must be the lake's.
python3 - /tmp/encore-verify.log /tmp/encore-counts.log <<'PY'
import re, sys
def types(path):
    return {m[2]: int(m[3]) for m in re.finditer(r"^([1-8]) +([a-z_]+) +(\d+)$", open(path).read(), re.M)}
lake, ch = types(sys.argv[1]), types(sys.argv[2])
assert len(lake) == 8 and lake == ch, f"per-type counts differ: lake {lake}, ClickHouse {ch}"
print("ClickHouse counts per event type match the lake:", sum(ch.values()), "events")
PY
# Delete one lake file: verify must name its partition and offset range as a gap and exit 1.
victim=$(python3 scripts/lake_delete_one.py "$ENCORE_S3_ENDPOINT" "$run_id" "dev/$run_id")
echo "deleted $victim"
# Data files are p<partition>-<first>-<last>-e<writer epoch>.parquet (no -e… before epochs).
read -r part first last < <(sed -E 's/.*p0*([0-9]+)-0*([0-9]+)-0*([0-9]+)(-e[0-9]+)?\.parquet$/\1 \2 \3/' <<<"$victim")
set +e
./target/release/encore verify --lake "s3://$run_id/dev" --topic "$run_id" --brokers "$ENCORE_BROKERS" \
  --clickhouse-url "$ENCORE_CLICKHOUSE_URL" --clickhouse-database "$ch_db" >/tmp/encore-verify-damaged.log
code=$?
set -e
grep -E "^\s+- \[" /tmp/encore-verify-damaged.log
[[ $code -eq 1 ]] || { echo "verify exited $code on a damaged lake, expected 1"; exit 1; }
grep -q "\[gap\] partition $part: offsets $first-$last are in the topic but not in the lake" /tmp/encore-verify-damaged.log \
  || { echo "verify did not name partition $part offsets $first-$last"; exit 1; }
echo "verify named the deleted file's range: partition $part offsets $first-$last (exit 1)"
./target/release/encore clickhouse status "${ch[@]}"
./target/release/encore clickhouse drop "${ch[@]}"

# One closing line with the totals of every cargo test binary (the end-to-end checks above
# would have stopped the script had they failed).
passed=$(grep -o '[0-9]* passed' /tmp/encore-cargo-test.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -o '[0-9]* failed' /tmp/encore-cargo-test.log | awk '{s+=$1} END {print s+0}')
echo
echo "tests: ${passed} passed, ${failed} failed"
