#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh machine (Rust components,
# pyarrow), then runs formatting and lint checks, every cargo test, and an end-to-end check of
# the binary whose lake is read back by pyarrow. Fails on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
cargo --version
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
python3 -c 'import pyarrow' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyarrow

step "format and lint"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings

step "unit and integration tests"
cargo test --all 2>&1 | tee /tmp/encore-cargo-test.log
# A run that executed no test is a failure, not a pass.
grep -q "test result: ok. [1-9]" /tmp/encore-cargo-test.log

step "benches compile"
cargo bench --no-run

step "end to end: encore run, encore verify, pyarrow"
lake="$(mktemp -d)/lake"
cargo build --release
./target/release/encore run --users 2000 --events 200000 --max-rate --seed 7 --lake "$lake" --no-progress
./target/release/encore verify --lake "$lake"
python3 scripts/check_lake.py "$lake" 200000
rm -rf "$(dirname "$lake")"

# One closing line with the totals of every cargo test binary (the end-to-end checks above
# would have stopped the script had they failed).
passed=$(grep -o '[0-9]* passed' /tmp/encore-cargo-test.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -o '[0-9]* failed' /tmp/encore-cargo-test.log | awk '{s+=$1} END {print s+0}')
echo
echo "tests: ${passed} passed, ${failed} failed"
