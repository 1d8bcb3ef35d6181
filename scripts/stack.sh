#!/usr/bin/env bash
# shellcheck disable=SC2317 # cmd_* functions run indirectly through with_lock "$@"
# scripts/stack.sh — the real local data stack for encore's tests and benchmarks, without Docker.
#
#   scripts/stack.sh up [service...]     install what is missing (cached), start, wait until healthy
#   scripts/stack.sh down [service...]   stop what this script started (pid files), wait for exit
#   scripts/stack.sh status              each service: up/down, pid, address (exit 1 if any is down)
#   scripts/stack.sh logs [service]      tail the logs (ENCORE_STACK_LOG_LINES, default 40)
#   scripts/stack.sh env                 export lines: eval "$(scripts/stack.sh env)"
#   scripts/stack.sh install [service...] install/build the tools only, start nothing
#   scripts/stack.sh restart [service...] stop and start again, keeping the data (a broker restart)
#   scripts/stack.sh reset [service...]  stop, then delete the service's data (topics, objects, tables)
#   scripts/stack.sh pause|resume service  SIGSTOP / SIGCONT a running service (a server that stops
#                                        answering, then comes back with its state intact)
#   scripts/stack.sh kafka-acls ARGS...  Apache Kafka's AclCommand against the broker (as a super user)
# Services: kafka, s3s-fs (alias s3), clickhouse (alias ch); default: all three.
#
# Services, all on 127.0.0.1:
#   kafka       Apache Kafka 4.1.2 from Maven Central, single-node KRaft            ENCORE_KAFKA_PORT (9092)
#               (broker+controller; controller on ENCORE_KAFKA_CONTROLLER_PORT, 9093), a SASL/PLAIN
#               listener with ACLs enforced on ENCORE_KAFKA_SASL_PORT (9094); Java 17 + Maven.
#   s3s-fs      S3 API over a directory, s3s-fs 0.14.1 from crates.io              ENCORE_S3_PORT (9000)
#   clickhouse  Debian's clickhouse-server 18.16 (apt), HTTP interface             ENCORE_CLICKHOUSE_HTTP_PORT (8123)
#               its Kafka engine runs on librdkafka 2.12.1 built from rdkafka-sys 4.10.0's vendored
#               source, the librdkafka encore itself links (Debian's is 2.0.2).
#
# SASL users (listener 9094): encore-admin (super user), encore-writer and encore-reader, which
# hold only the ACLs a test grants them; the PLAINTEXT listener (ANONYMOUS) is a super user.
#
# State (data/, logs/, pids/): ${ENCORE_STACK_DIR:-$HOME/.cache/encore/stack}
# Tools (built once, version-stamped): ${ENCORE_TOOLS_DIR:-$HOME/.cache/encore/tools}
# A cold install takes about 3 minutes on 2 cores (178 s measured: s3s-fs's build 126 s,
# librdkafka's about 40 s, Kafka's jars 7 s, apt seconds); later runs take seconds.
# Other knobs: ENCORE_CLICKHOUSE_TCP_PORT (19000), ENCORE_CLICKHOUSE_INTERSERVER_PORT (19009),
# ENCORE_STACK_TIMEOUT (startup deadline, 90 s), ENCORE_KAFKA_HEAP (768m), ENCORE_KAFKA_LOG (WARN),
# ENCORE_S3S_LOG (RUST_LOG, warn), ENCORE_CLICKHOUSE_LOG_LEVEL (information),
# ENCORE_CLICKHOUSE_KAFKA_DEBUG (librdkafka debug contexts).
set -euo pipefail

KAFKA_VERSION=4.1.2
# The broker's POM has no SLF4J binding (the release tarball ships log4j-slf4j-impl): without
# one the broker logs nothing. 2.24.3 is the log4j2 that Kafka 4.1 is built with.
LOG4J_VERSION=2.24.3
S3S_FS_VERSION=0.14.1
S3S_FS_FEATURES=binary
# rdkafka 0.38 depends on rdkafka-sys ^4.9.0, which resolves to 4.10.0+2.12.1 (librdkafka 2.12.1).
RDKAFKA_SYS_VERSION=4.10.0
LIBRDKAFKA_VERSION=2.12.1
# gzip (zlib), snappy and lz4 are built in; zstd needs libzstd-dev (installed below when root).
LIBRDKAFKA_CONFIGURE_FLAGS=(--disable-ssl --disable-gssapi --disable-sasl --enable-zstd)
CLICKHOUSE_VERSION_PREFIX=18.16.

STATE=$(realpath -m -- "${ENCORE_STACK_DIR:-$HOME/.cache/encore/stack}")
TOOLS=$(realpath -m -- "${ENCORE_TOOLS_DIR:-$HOME/.cache/encore/tools}")
HOST=127.0.0.1
KAFKA_PORT=${ENCORE_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${ENCORE_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_SASL_PORT=${ENCORE_KAFKA_SASL_PORT:-9094}
KAFKA_HEAP=${ENCORE_KAFKA_HEAP:-768m}
KAFKA_SASL_USERS=(encore-admin:admin-secret encore-writer:writer-secret encore-reader:reader-secret)
S3_PORT=${ENCORE_S3_PORT:-9000}
CH_HTTP_PORT=${ENCORE_CLICKHOUSE_HTTP_PORT:-8123}
# ClickHouse's native port defaults to 9000, which is MinIO's (and so s3s-fs's) convention: moved.
CH_TCP_PORT=${ENCORE_CLICKHOUSE_TCP_PORT:-19000}
CH_INTERSERVER_PORT=${ENCORE_CLICKHOUSE_INTERSERVER_PORT:-19009}
S3_ACCESS_KEY=minioadmin
S3_SECRET_KEY=minioadmin
S3_REGION=us-east-1
S3_BUCKET=lake
CH_USER=click
CH_PASSWORD=click
START_TIMEOUT=${ENCORE_STACK_TIMEOUT:-90}
LOG_LINES=${ENCORE_STACK_LOG_LINES:-40}

SERVICES=(kafka s3s-fs clickhouse)

for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT" "$S3_PORT" "$CH_HTTP_PORT" "$CH_TCP_PORT" "$CH_INTERSERVER_PORT"; do
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        echo "stack: error: invalid port '$port' (check ENCORE_*_PORT)" >&2
        exit 2
    fi
done

KAFKA_ROOT="$TOOLS/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_ROOT/libs"
KAFKA_ETC="$STATE/kafka-etc"
S3S_FS_ROOT="$TOOLS/s3s-fs-$S3S_FS_VERSION"
S3S_FS_BIN="$S3S_FS_ROOT/bin/s3s-fs"
LIBRDKAFKA_ROOT="$TOOLS/librdkafka-$LIBRDKAFKA_VERSION"
LIBRDKAFKA_LIB="$LIBRDKAFKA_ROOT/lib"
CH_BIN=/usr/sbin/clickhouse-server
CH_ETC="$STATE/clickhouse-etc"

say() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

usage() {
    sed -n 's/^#   \(scripts\/stack.sh .*\)/\1/p; s/^# \(Services: .*\)/\1/p' "$0" >&2
    exit "${1:-2}"
}

canonical_service() {
    case "$1" in
        kafka) echo kafka ;;
        s3s-fs | s3 | s3s) echo s3s-fs ;;
        clickhouse | ch) echo clickhouse ;;
        *) die "unknown service '$1' (expected one of: ${SERVICES[*]})" ;;
    esac
}

service_port() {
    case "$1" in
        kafka) echo "$KAFKA_PORT" ;;
        s3s-fs) echo "$S3_PORT" ;;
        clickhouse) echo "$CH_HTTP_PORT" ;;
    esac
}

service_bin() {
    case "$1" in
        kafka) java_bin ;;
        s3s-fs) echo "$S3S_FS_BIN" ;;
        clickhouse) echo "$CH_BIN" ;;
    esac
}

java_bin() { readlink -f "$(command -v java)"; }

pid_file() { echo "$STATE/pids/$1.pid"; }
settings_file() { echo "$STATE/pids/$1.settings"; }

# What a running service was started with; a change needs 'down' first.
service_settings() {
    case "$1" in
        kafka) echo "$HOST:$KAFKA_PORT controller $KAFKA_CONTROLLER_PORT sasl $KAFKA_SASL_PORT kafka $KAFKA_VERSION heap $KAFKA_HEAP" ;;
        s3s-fs) echo "$HOST:$S3_PORT s3s-fs $S3S_FS_VERSION" ;;
        clickhouse) echo "$HOST:$CH_HTTP_PORT tcp $CH_TCP_PORT interserver $CH_INTERSERVER_PORT librdkafka $LIBRDKAFKA_VERSION" ;;
    esac
}
log_file() { echo "$STATE/logs/$1.log"; }

# ---------------------------------------------------------------------------------------------
# process bookkeeping

# The pid recorded for a service, if that process is alive and still is the program we started
# (same executable, and its command line mentions this state dir).
service_pid() {
    local svc=$1 pf pid exe
    pf=$(pid_file "$svc")
    [[ -f $pf ]] || return 1
    pid=$(<"$pf")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -d /proc/$pid ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}
    [[ $exe == "$(readlink -f "$(service_bin "$svc")")" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/" || return 1
    echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Kafka Metadata v0 request; prints the advertised brokers as host:port.
kafka_metadata() {
    python3 - "$HOST" "$1" <<'PY'
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=3)
s.settimeout(3)
client = b"encore-stack"
req = struct.pack(">hhih", 3, 0, 42, len(client)) + client + struct.pack(">i", 0)
s.sendall(struct.pack(">i", len(req)) + req)
def recv(n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    return buf
data = recv(struct.unpack(">i", recv(4))[0])
corr, count = struct.unpack(">ii", data[:8])
if corr != 42:
    raise SystemExit("bad correlation id")
off, brokers = 8, []
for _ in range(count):
    _node, hlen = struct.unpack(">ih", data[off:off + 6]); off += 6
    h = data[off:off + hlen].decode(); off += hlen
    (p,) = struct.unpack(">i", data[off:off + 4]); off += 4
    brokers.append(f"{h}:{p}")
print(" ".join(brokers))
PY
}

healthy() {
    local svc=$1 code
    case "$svc" in
        kafka)
            if command -v python3 >/dev/null; then
                local brokers
                brokers=$(kafka_metadata "$KAFKA_PORT" 2>/dev/null) || return 1
                [[ " $brokers " == *" $HOST:$KAFKA_PORT "* ]]
            else
                port_open "$KAFKA_PORT"
            fi
            ;;
        s3s-fs)
            # A SigV4-signed ListBuckets (curl >= 7.75): proves the keys too, and unsigned probes
            # would fill s3s-fs's log with AccessDenied errors.
            code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' \
                --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
                -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://$HOST:$S3_PORT/" 2>/dev/null) || true
            [[ $code == 200 ]]
            ;;
        clickhouse)
            [[ "$(curl -s -m 3 "http://$HOST:$CH_HTTP_PORT/ping" 2>/dev/null)" == "Ok." ]]
            ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# installation (cached under $TOOLS, each tool with a stamp naming its pinned version)

stamp_ok() { [[ -f $1 && "$(<"$1")" == "$2" ]]; }

run_logged() { # run_logged LOG CMD... — output to LOG; on failure show its tail and exit
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2 || true
        die "failed: $* (full log: $log)"
    fi
}

cargo_install() { # cargo_install CRATE VERSION FEATURES ROOT — nice'd, own target dir, outside any checkout
    local crate=$1 version=$2 features=$3 root=$4 started
    command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
    mkdir -p "$TOOLS/build"
    started=$(now)
    (
        cd "$TOOLS/build"
        export CARGO_TARGET_DIR="$TOOLS/build/target-$crate"
        run_logged "$TOOLS/build/$crate-$version.log" \
            nice -n 10 cargo install "$crate" --version "$version" --locked --features "$features" \
            --root "$root" --force
    )
    rm -rf "$TOOLS/build/target-$crate"
    say "built $crate $version in $(($(now) - started))s"
}

# Apache Kafka's broker from Maven Central: a POM naming the broker and an SLF4J binding, its
# runtime dependencies copied into the tool cache (kafka-tools for AclCommand).
install_kafka() {
    local stamp="$KAFKA_ROOT/.encore-stamp" want="kafka $KAFKA_VERSION log4j $LOG4J_VERSION" build="$TOOLS/build/kafka-pom" started
    if [[ -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] && stamp_ok "$stamp" "$want"; then return 0; fi
    command -v java >/dev/null || die "java not found: Apache Kafka $KAFKA_VERSION needs Java 17 (apt-get install -y openjdk-17-jre-headless)"
    command -v mvn >/dev/null || die "mvn not found: Kafka's jars come from Maven Central through Maven (apt-get install -y maven)"
    java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || die "Apache Kafka $KAFKA_VERSION needs Java 17 or newer; java -version says: $(java -version 2>&1 | head -1)"
    say "downloading Apache Kafka $KAFKA_VERSION from Maven Central (log: $TOOLS/build/kafka-mvn.log)"
    started=$(now)
    rm -rf "$KAFKA_ROOT" "$build"
    mkdir -p "$build" "$KAFKA_LIBS"
    cat >"$build/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.encore.stack</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
    (cd "$build" && run_logged "$TOOLS/build/kafka-mvn.log" mvn -B -q dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS")
    [[ -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] || die "Maven did not copy kafka_2.13-$KAFKA_VERSION.jar into $KAFKA_LIBS"
    rm -rf "$build"
    echo "$want" >"$stamp"
    say "installed Apache Kafka $KAFKA_VERSION ($(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars) in $(($(now) - started))s"
}

install_s3s_fs() {
    local stamp="$S3S_FS_ROOT/.encore-stamp" want="s3s-fs $S3S_FS_VERSION features=$S3S_FS_FEATURES"
    if [[ -x $S3S_FS_BIN ]] && stamp_ok "$stamp" "$want"; then return 0; fi
    say "building s3s-fs $S3S_FS_VERSION from crates.io (about 2 minutes, more while other builds run; log: $TOOLS/build/s3s-fs-$S3S_FS_VERSION.log)"
    rm -rf "$S3S_FS_ROOT"
    cargo_install s3s-fs "$S3S_FS_VERSION" "$S3S_FS_FEATURES" "$S3S_FS_ROOT"
    echo "$want" >"$stamp"
}

clickhouse_version() { dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || true; }

install_clickhouse() {
    local version started
    version=$(clickhouse_version)
    if [[ -x $CH_BIN && $version == "$CLICKHOUSE_VERSION_PREFIX"* ]]; then return 0; fi
    [[ -z $version || $version == "$CLICKHOUSE_VERSION_PREFIX"* ]] ||
        say "warning: clickhouse-server $version installed, expected $CLICKHOUSE_VERSION_PREFIX*"
    [[ $(id -u) -eq 0 ]] || die "clickhouse-server is not installed and installing it needs root: apt-get install -y clickhouse-server clickhouse-client"
    say "installing clickhouse-server and clickhouse-client with apt-get"
    started=$(now)
    mkdir -p "$TOOLS/build"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y clickhouse-server clickhouse-client >"$TOOLS/build/apt-clickhouse.log" 2>&1; then
        run_logged "$TOOLS/build/apt-update.log" apt-get update
        run_logged "$TOOLS/build/apt-clickhouse.log" apt-get install -y clickhouse-server clickhouse-client
    fi
    [[ -x $CH_BIN ]] || die "apt-get installed clickhouse-server but $CH_BIN is missing"
    version=$(clickhouse_version)
    [[ $version == "$CLICKHOUSE_VERSION_PREFIX"* ]] ||
        say "warning: got clickhouse-server $version, tested with $CLICKHOUSE_VERSION_PREFIX*"
    say "installed clickhouse-server $version in $(($(now) - started))s"
}

# librdkafka.so.1 from the rdkafka-sys crate's vendored source (the same librdkafka that encore's
# rdkafka links), for ClickHouse's Kafka engine via LD_LIBRARY_PATH.
install_librdkafka() {
    local stamp="$LIBRDKAFKA_ROOT/.encore-stamp" want="librdkafka $LIBRDKAFKA_VERSION from rdkafka-sys $RDKAFKA_SYS_VERSION ${LIBRDKAFKA_CONFIGURE_FLAGS[*]}"
    local fetch="$TOOLS/build/fetch-rdkafka-sys" crate src started
    if [[ -f $LIBRDKAFKA_LIB/librdkafka.so.1 ]] && stamp_ok "$stamp" "$want"; then return 0; fi
    command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
    { command -v make && command -v cc; } >/dev/null || die "a C toolchain (cc, make) is needed to build librdkafka: apt-get install -y build-essential"
    say "building librdkafka $LIBRDKAFKA_VERSION from rdkafka-sys $RDKAFKA_SYS_VERSION (about 1 minute; log: $TOOLS/build/librdkafka.log)"
    started=$(now)
    if ! dpkg-query -W -f='${Status}' libzstd-dev 2>/dev/null | grep -q 'ok installed'; then
        [[ $(id -u) -eq 0 ]] || die "librdkafka needs libzstd-dev: apt-get install -y libzstd-dev"
        mkdir -p "$TOOLS/build"
        DEBIAN_FRONTEND=noninteractive apt-get install -y libzstd-dev >"$TOOLS/build/apt-libzstd-dev.log" 2>&1 || {
            run_logged "$TOOLS/build/apt-update.log" apt-get update
            DEBIAN_FRONTEND=noninteractive run_logged "$TOOLS/build/apt-libzstd-dev.log" apt-get install -y libzstd-dev
        }
    fi
    rm -rf "$LIBRDKAFKA_ROOT" "$fetch"
    mkdir -p "$fetch/src" "$LIBRDKAFKA_LIB"
    cat >"$fetch/Cargo.toml" <<EOF
[package]
name = "fetch-rdkafka-sys"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rdkafka-sys = { version = "=$RDKAFKA_SYS_VERSION", default-features = false }
EOF
    : >"$fetch/src/lib.rs"
    (cd "$fetch" && run_logged "$TOOLS/build/librdkafka-fetch.log" cargo fetch)
    crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "rdkafka-sys-$RDKAFKA_SYS_VERSION*.crate" -print -quit)
    [[ -n $crate ]] || die "cargo fetch did not leave rdkafka-sys-$RDKAFKA_SYS_VERSION*.crate in ${CARGO_HOME:-$HOME/.cargo}/registry/cache"
    tar -xzf "$crate" -C "$fetch"
    src=$(find "$fetch" -maxdepth 2 -type d -path "*/rdkafka-sys-*/librdkafka" -print -quit)
    [[ -n $src && -x $src/configure ]] || die "no librdkafka source in $crate"
    local -a v
    IFS=. read -r -a v <<<"$LIBRDKAFKA_VERSION"
    grep -q "RD_KAFKA_VERSION *0x$(printf '%02x%02x%02x' "${v[@]}")" "$src/src/rdkafka.h" ||
        die "rdkafka-sys $RDKAFKA_SYS_VERSION does not vendor librdkafka $LIBRDKAFKA_VERSION"
    (
        cd "$src"
        run_logged "$TOOLS/build/librdkafka.log" ./configure "${LIBRDKAFKA_CONFIGURE_FLAGS[@]}"
        run_logged "$TOOLS/build/librdkafka-make.log" nice -n 10 make -j"$(nproc)" -C src librdkafka.so.1
    )
    cp "$src/src/librdkafka.so.1" "$LIBRDKAFKA_LIB/"
    rm -rf "$fetch"
    echo "$want" >"$stamp"
    say "built librdkafka $LIBRDKAFKA_VERSION in $(($(now) - started))s"
}

install_for() {
    case "$1" in
        kafka) install_kafka ;;
        s3s-fs) install_s3s_fs ;;
        clickhouse) install_clickhouse && install_librdkafka ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# starting

spawn() { # spawn SERVICE DIR CMD... — detached (own session), output appended to the service log
    local svc=$1 dir=$2 log
    shift 2
    log=$(log_file "$svc")
    # keep one previous generation once a log passes 50 MB
    if [[ -f $log ]] && (($(stat -c %s "$log") > 50 * 1024 * 1024)); then mv -f "$log" "$log.1"; fi
    printf '\n==== %s stack.sh starting %s: %s\n' "$(date -u +%FT%TZ)" "$svc" "$*" >>"$log"
    # fd 9 is stack.sh's lock: the daemon must not inherit it.
    (cd "$dir" && exec setsid "$@" >>"$log" 2>&1 </dev/null 9>&-) &
    echo $! >"$(pid_file "$svc")"
}

write_kafka_config() {
    local data="$STATE/data/kafka" jaas="" u
    rm -rf "$KAFKA_ETC"
    mkdir -p "$KAFKA_ETC" "$data"
    for u in "${KAFKA_SASL_USERS[@]}"; do jaas+=" user_${u%%:*}=\"${u#*:}\""; done
    cat >"$KAFKA_ETC/server.properties" <<EOF
# written by encore's scripts/stack.sh; regenerated on every start
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$jaas;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
# the PLAINTEXT listener (tests, ClickHouse) and the controller connect as ANONYMOUS
super.users=User:ANONYMOUS;User:encore-admin
log.dirs=$data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# short enough that a test's sink or ClickHouse consumer that died is noticed quickly
group.consumer.min.session.timeout.ms=1000
group.min.session.timeout.ms=1000
log.segment.bytes=268435456
# The fault-injection tests send 2 MiB records (--inject oversized, the sink's too_large dead
# letters); Kafka's default limit is 1 MiB per record batch.
message.max.bytes=4194304
EOF
    cat >"$KAFKA_ETC/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="out" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka.server.KafkaServer" level="INFO"/>
    <Logger name="kafka.server.BrokerServer" level="INFO"/>
    <Logger name="kafka.Kafka\$" level="INFO"/>
    <Root level="${ENCORE_KAFKA_LOG:-WARN}"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
EOF
}

# KRaft storage is formatted once per data directory (a cluster id of its own); reset deletes it.
format_kafka_storage() {
    local data="$STATE/data/kafka" id
    [[ -f $data/meta.properties ]] && return 0
    id=$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka: StorageTool random-uuid printed '$id'"
    run_logged "$STATE/logs/kafka-format.log" java -cp "$KAFKA_LIBS/*" \
        -Dlog4j2.configurationFile="$KAFKA_ETC/log4j2.xml" kafka.tools.StorageTool format \
        -t "$id" -c "$KAFKA_ETC/server.properties" --standalone
    say "formatted Kafka storage (cluster id $id)"
}

write_clickhouse_config() {
    local data="$STATE/data/clickhouse"
    rm -rf "$CH_ETC"
    mkdir -p "$CH_ETC/config.d" "$CH_ETC/users.d" "$data/tmp" "$data/user_files" "$data/format_schemas"
    # The package's own config and users, overridden below (ClickHouse merges config.d/users.d).
    cp /etc/clickhouse-server/config.xml /etc/clickhouse-server/users.xml "$CH_ETC/"
    cat >"$CH_ETC/config.d/encore-stack.xml" <<EOF
<?xml version="1.0"?>
<!-- written by encore's scripts/stack.sh; regenerated on every start -->
<yandex>
    <logger>
        <level>${ENCORE_CLICKHOUSE_LOG_LEVEL:-information}</level>
        <log>$STATE/logs/clickhouse-server.log</log>
        <errorlog>$STATE/logs/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>$HOST</listen_host>
    <http_port>$CH_HTTP_PORT</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <interserver_http_port>$CH_INTERSERVER_PORT</interserver_http_port>
    <interserver_http_host>$HOST</interserver_http_host>
    <path>$data/</path>
    <tmp_path>$data/tmp/</tmp_path>
    <user_files_path>$data/user_files/</user_files_path>
    <format_schema_path>$data/format_schemas/</format_schema_path>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <!-- librdkafka settings for every Kafka table (underscores become dots). 18.16 leaves
         auto.offset.reset at librdkafka's "latest", so a new consumer group skipped whatever the
         topic already held; current ClickHouse releases set "earliest": do the same here. -->
    <kafka>
        <auto_offset_reset>earliest</auto_offset_reset>
        <!-- a consumer that did not leave its group (e.g. across a ClickHouse restart) holds its
             partitions until the session times out: 10 s instead of librdkafka's 45 s -->
        <session_timeout_ms>10000</session_timeout_ms>
    </kafka>
</yandex>
EOF
    if [[ -n ${ENCORE_CLICKHOUSE_KAFKA_DEBUG:-} ]]; then
        # librdkafka's debug contexts (e.g. all, or cgrp,consumer,fetch,protocol): into logs/clickhouse.log
        cat >"$CH_ETC/config.d/encore-stack-kafka-debug.xml" <<EOF
<?xml version="1.0"?>
<yandex><kafka><debug>$ENCORE_CLICKHOUSE_KAFKA_DEBUG</debug></kafka></yandex>
EOF
    fi
    cat >"$CH_ETC/users.d/encore-stack.xml" <<EOF
<?xml version="1.0"?>
<!-- written by encore's scripts/stack.sh: the '$CH_USER' user, local connections only -->
<yandex>
    <profiles>
        <default>
            <!-- 18.16's Kafka engine parses with the default profile's settings and has neither
                 kafka_skip_broken_messages nor kafka_handle_error_mode: without an error allowance
                 one malformed message blocks its table forever. Newer servers get
                 kafka_handle_error_mode='stream' from encore's DDL instead. -->
            <input_format_allow_errors_num>1000000000</input_format_allow_errors_num>
        </default>
    </profiles>
    <users>
        <$CH_USER>
            <password>$CH_PASSWORD</password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </$CH_USER>
    </users>
</yandex>
EOF
}

start_service() {
    local svc=$1
    case "$svc" in
        kafka)
            write_kafka_config
            format_kafka_storage
            # A fixed heap: the JVM's default (a quarter of RAM) would take 6 GB of a 24 GB machine.
            spawn kafka "$STATE/data/kafka" "$(java_bin)" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" \
                -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
                -Dlog4j2.configurationFile="$KAFKA_ETC/log4j2.xml" \
                -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_ETC/server.properties"
            ;;
        s3s-fs)
            mkdir -p "$STATE/data/s3/$S3_BUCKET"
            spawn s3s-fs "$STATE/data/s3" env RUST_LOG="${ENCORE_S3S_LOG:-warn}" \
                "$S3S_FS_BIN" --host "$HOST" --port "$S3_PORT" \
                --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$STATE/data/s3"
            ;;
        clickhouse)
            write_clickhouse_config
            spawn clickhouse "$STATE/data/clickhouse" env LD_LIBRARY_PATH="$LIBRDKAFKA_LIB" \
                "$CH_BIN" --config-file="$CH_ETC/config.xml"
            ;;
    esac
}

# After ClickHouse is up: its Kafka engine must use the librdkafka built above, not Debian's.
check_clickhouse_librdkafka() {
    local pid
    pid=$(service_pid clickhouse) || return 1
    grep -q "$LIBRDKAFKA_LIB/librdkafka.so.1" "/proc/$pid/maps" || {
        say "clickhouse (pid $pid) did not load $LIBRDKAFKA_LIB/librdkafka.so.1; it has:"
        grep librdkafka "/proc/$pid/maps" | awk '{print $6}' | sort -u >&2 || true
        return 1
    }
}

fail_service() {
    local svc=$1 why=$2 f
    say "$svc $why; last lines of its logs:"
    for f in "$(log_file "$svc")" "$STATE/logs/clickhouse-server.err.log"; do
        [[ $f == *clickhouse-server* && $svc != clickhouse ]] && continue
        [[ -s $f ]] || continue
        printf -- '---- %s\n' "$f" >&2
        tail -n "$LOG_LINES" "$f" >&2
    done
    exit 1
}

cmd_up() {
    local svcs=("$@") svc pid started deadline pending=() t0 port
    t0=$(now)
    mkdir -p "$STATE/data" "$STATE/logs" "$STATE/pids" "$TOOLS"
    for svc in "${svcs[@]}"; do install_for "$svc"; done

    for svc in "${svcs[@]}"; do
        if pid=$(service_pid "$svc"); then
            if [[ "$(cat "$(settings_file "$svc")" 2>/dev/null)" != "$(service_settings "$svc")" ]]; then
                die "$svc (pid $pid) runs with other settings ($(cat "$(settings_file "$svc")" 2>/dev/null || echo unknown)); run '$0 down $svc' first"
            fi
            if healthy "$svc"; then
                say "$svc already up (pid $pid, $HOST:$(service_port "$svc"))"
                continue
            fi
            pending+=("$svc") # started earlier and still coming up (or wedged: the deadline decides)
            continue
        fi
        rm -f "$(pid_file "$svc")"
        if port_open "$(service_port "$svc")"; then
            die "$svc: port $HOST:$(service_port "$svc") is taken by a process this script did not start (set ENCORE_*_PORT or stop it)"
        fi
        if [[ $svc == kafka ]]; then
            for port in "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT"; do
                port_open "$port" && die "kafka: port $HOST:$port is taken (set ENCORE_KAFKA_CONTROLLER_PORT / ENCORE_KAFKA_SASL_PORT)"
            done
        fi
        if [[ $svc == clickhouse ]] && port_open "$CH_TCP_PORT"; then
            die "clickhouse: native port $HOST:$CH_TCP_PORT is taken (set ENCORE_CLICKHOUSE_TCP_PORT)"
        fi
        start_service "$svc"
        service_settings "$svc" >"$(settings_file "$svc")"
        say "started $svc (pid $(<"$(pid_file "$svc")"))"
        pending+=("$svc")
    done

    deadline=$(($(now) + START_TIMEOUT))
    for svc in "${pending[@]}"; do
        started=$(now)
        until healthy "$svc"; do
            # Not ours yet may mean not exec'd yet (subshell → setsid → env → the server):
            # only a process that is gone has exited.
            service_pid "$svc" >/dev/null || [[ -d /proc/$(<"$(pid_file "$svc")") ]] ||
                fail_service "$svc" "exited during startup"
            (($(now) < deadline)) || fail_service "$svc" "not healthy after ${START_TIMEOUT}s"
            sleep 0.2
        done
        if [[ $svc == clickhouse ]]; then
            check_clickhouse_librdkafka || fail_service clickhouse "runs with the wrong librdkafka"
        fi
        say "$svc healthy after $(($(now) - started))s"
    done
    cmd_status "${svcs[@]}" || true
    say "up in $(($(now) - t0))s; use it with: eval \"\$($0 env)\""
}

cmd_install() {
    local svc
    mkdir -p "$TOOLS"
    for svc in "$@"; do install_for "$svc"; done
    say "installed: $*"
}

cmd_down() {
    local svc pid deadline
    for svc in "$@"; do
        if ! pid=$(service_pid "$svc"); then
            [[ -f $(pid_file "$svc") ]] && say "$svc: stale pid file removed (process gone or not ours)"
            rm -f "$(pid_file "$svc")" "$(settings_file "$svc")"
            say "$svc not running"
            continue
        fi
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$(($(now) + 30))
        while [[ -d /proc/$pid ]] && service_pid "$svc" >/dev/null; do
            if (($(now) >= deadline)); then
                say "$svc (pid $pid) ignored SIGTERM for 30s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                deadline=$(($(now) + 10))
            fi
            sleep 0.2
        done
        rm -f "$(pid_file "$svc")" "$(settings_file "$svc")"
        say "stopped $svc (pid $pid)"
    done
}

# SIGSTOP/SIGCONT: the process keeps its sockets and state, clients see a server that stops
# answering (restart is the other fault: the process goes away and comes back).
cmd_signal() {
    local sig=$1 svc pid
    shift
    for svc in "$@"; do
        pid=$(service_pid "$svc") || { say "$svc is not running"; return 1; }
        kill "-$sig" "$pid"
        say "$svc (pid $pid): SIG$sig"
    done
}

cmd_reset() {
    local svc dir
    cmd_down "$@"
    for svc in "$@"; do
        case "$svc" in
            kafka) dir="$STATE/data/kafka" ;;
            s3s-fs) dir="$STATE/data/s3" ;;
            clickhouse) dir="$STATE/data/clickhouse" ;;
        esac
        rm -rf "$dir"
        say "deleted $svc data ($dir)"
    done
}

cmd_status() {
    local svc pid all=0 extra
    for svc in "$@"; do
        extra=""
        [[ $svc == clickhouse ]] && extra=" (native $HOST:$CH_TCP_PORT, user $CH_USER)"
        if pid=$(service_pid "$svc"); then
            if healthy "$svc"; then
                printf '%-11s up        pid %-8s %s:%s%s\n' "$svc" "$pid" "$HOST" "$(service_port "$svc")" "$extra"
            else
                printf '%-11s unhealthy pid %-8s %s:%s%s\n' "$svc" "$pid" "$HOST" "$(service_port "$svc")" "$extra"
                all=1
            fi
        else
            printf '%-11s down      %-12s %s:%s\n' "$svc" "" "$HOST" "$(service_port "$svc")"
            all=1
        fi
    done
    return "$all"
}

cmd_logs() {
    local svc f
    for svc in "$@"; do
        for f in "$(log_file "$svc")" "$STATE/logs/clickhouse-server.log" "$STATE/logs/clickhouse-server.err.log"; do
            [[ $f == *clickhouse-server* && $svc != clickhouse ]] && continue
            if [[ -f $f ]]; then
                printf '==== %s\n' "$f"
                tail -n "$LOG_LINES" "$f"
            else
                printf '==== %s (no log yet)\n' "$f"
            fi
        done
    done
}

cmd_restart() {
    cmd_down "$@"
    cmd_up "$@"
}

# Apache Kafka's AclCommand on the PLAINTEXT listener, whose ANONYMOUS principal is a super user.
cmd_kafka_acls() {
    [[ -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] || die "kafka is not installed: $0 install kafka"
    java -Dlog4j2.configurationFile="$KAFKA_ETC/log4j2.xml" -cp "$KAFKA_LIBS/*" \
        org.apache.kafka.tools.AclCommand --bootstrap-server "$HOST:$KAFKA_PORT" "$@"
}

cmd_env() {
    local name value
    for name in ENCORE_BROKERS ENCORE_KAFKA_SASL_BROKERS ENCORE_S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION \
        ENCORE_CLICKHOUSE_URL ENCORE_CLICKHOUSE_USER ENCORE_CLICKHOUSE_PASSWORD ENCORE_STACK_DIR; do
        case "$name" in
            ENCORE_BROKERS) value="$HOST:$KAFKA_PORT" ;;
            ENCORE_KAFKA_SASL_BROKERS) value="$HOST:$KAFKA_SASL_PORT" ;;
            ENCORE_S3_ENDPOINT) value="http://$HOST:$S3_PORT" ;;
            AWS_ACCESS_KEY_ID) value=$S3_ACCESS_KEY ;;
            AWS_SECRET_ACCESS_KEY) value=$S3_SECRET_KEY ;;
            AWS_REGION) value=$S3_REGION ;;
            ENCORE_CLICKHOUSE_URL) value="http://$HOST:$CH_HTTP_PORT" ;;
            ENCORE_CLICKHOUSE_USER) value=$CH_USER ;;
            ENCORE_CLICKHOUSE_PASSWORD) value=$CH_PASSWORD ;;
            ENCORE_STACK_DIR) value=$STATE ;;
        esac
        printf 'export %s=%q\n' "$name" "$value"
    done
}

with_lock() { # serialize up/down/install between concurrent callers (e.g. parallel test runs)
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    if command -v flock >/dev/null && ! flock -n 9; then
        say "waiting for another stack.sh holding $STATE/.lock"
        flock -w 1800 9 || die "timed out waiting for $STATE/.lock"
    fi
    "$@"
}

main() {
    local cmd=${1:-}
    [[ -n $cmd ]] || usage
    shift
    if [[ $cmd == kafka-acls ]]; then
        cmd_kafka_acls "$@"
        return
    fi
    local svcs=() a
    if (($# == 0)); then
        svcs=("${SERVICES[@]}")
    else
        for a in "$@"; do svcs+=("$(canonical_service "$a")"); done
    fi
    case "$cmd" in
        up) with_lock cmd_up "${svcs[@]}" ;;
        down) with_lock cmd_down "${svcs[@]}" ;;
        reset) with_lock cmd_reset "${svcs[@]}" ;;
        restart) with_lock cmd_restart "${svcs[@]}" ;;
        status) cmd_status "${svcs[@]}" ;;
        logs) cmd_logs "${svcs[@]}" ;;
        env) cmd_env ;;
        install) with_lock cmd_install "${svcs[@]}" ;;
        pause) cmd_signal STOP "${svcs[@]}" ;;
        resume) cmd_signal CONT "${svcs[@]}" ;;
        -h | --help | help) usage 0 ;;
        *) say "unknown command '$cmd'" && usage ;;
    esac
}

main "$@"; exit $?  # exit here: bash must not read on if this file is edited while running
