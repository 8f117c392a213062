#!/usr/bin/env bash
# shellcheck disable=SC2094 # each server appends its log and its early stderr to one file
# services.sh - start and stop the real servers that service-outbox's integration tests use.
#
#   up      install what is missing, start every service (a no-op for those already running),
#           wait until each accepts connections and write services.env
#   down    stop exactly what `up` started (pidfiles) and delete their data (the next `up` is clean)
#   status  one line per service
#   env     print the path of services.env (shell-sourceable OUTBOX_TEST_* lines)
#
# Services, all on 127.0.0.1 and non-default ports:
#   MongoDB-compatible  37017  a real mongod (single-node replica set rs0) when `mongod` is on PATH,
#                              else FerretDB v1.24.2 (SQLite backend) built once from source with
#                              ferretdb/ferretdb-v1.24.2.patch (tailable-cursor fixes, see README.md)
#   redis-server        16379  append-only file, fsync always
#   nats-server         14222  JetStream on, monitoring port off
#   Apache Kafka        19092  PLAINTEXT; 19094 SASL_SSL with SCRAM-SHA-512 (user outbox);
#                              19093 KRaft controller
# FerretDB also listens on 37018 with TLS (test CA from make-test-ca.sh, client certificate
# required); a real mongod gets no TLS listener (the TLS tests skip, saying so).
#
# State dir: ${OUTBOX_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/service-outbox}
#   services.env, logs/, pids/, run/ (data, removed by `down`), ferretdb-v1.24.2-<patch hash>/ferretdb
# OUTBOX_SERVICES_MONGODB=auto|mongod|ferretdb chooses the MongoDB-compatible server (default auto).
# OUTBOX_FERRETDB_CAPPED_CLEANUP: how often FerretDB trims capped collections (default 1s).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${OUTBOX_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/service-outbox}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
RUN=$STATE/run
LOGS=$STATE/logs
PIDS=$STATE/pids
ENV_FILE=$STATE/services.env
TLS_DIR=$STATE/tls  # test CA and certificates (make-test-ca.sh), kept across down/up

# OUTBOX_SERVICES_PORT_OFFSET (default 0) shifts every port: a second harness (another state
# dir) can then run beside the first, e.g. to try a change to this script.
# The offset is remembered in the state dir, so tests that run stop-kafka/start-kafka with
# only OUTBOX_SERVICES_DIR set get the same ports.
if [ -n "${OUTBOX_SERVICES_PORT_OFFSET:-}" ]; then
    OFFSET=$OUTBOX_SERVICES_PORT_OFFSET
else
    OFFSET=$(cat "$STATE/port-offset" 2>/dev/null || echo 0)
fi
[[ $OFFSET =~ ^[0-9]+$ ]] || { echo "services: OUTBOX_SERVICES_PORT_OFFSET must be a number" >&2; exit 2; }
if [ "$OFFSET" = 0 ]; then rm -f "$STATE/port-offset"; else echo "$OFFSET" >"$STATE/port-offset"; fi
MONGODB_PORT=$((37017 + OFFSET))
MONGODB_TLS_PORT=$((37018 + OFFSET))   # FerretDB only: TLS listener, client certificate required
REDIS_PORT=$((16379 + OFFSET))
NATS_PORT=$((14222 + OFFSET))
KAFKA_PORT=$((19092 + OFFSET))             # PLAINTEXT listener
KAFKA_CONTROLLER_PORT=$((19093 + OFFSET))  # KRaft controller listener
KAFKA_SASL_PORT=$((19094 + OFFSET))        # SASL_SSL listener, SCRAM-SHA-512
KAFKA_SASL_USER=outbox
# A test password, not a secret: it only has to be one that tests can look for in output.
KAFKA_SASL_PASSWORD=outbox-scram-Pw-7f3a9c
KAFKA_VERSION=4.1.1          # kafka/pom.xml says the same

FERRETDB_VERSION=v1.24.2
FERRETDB_PATCH=$HERE/ferretdb/ferretdb-$FERRETDB_VERSION.patch
START_TIMEOUT=${OUTBOX_SERVICES_TIMEOUT:-60}  # seconds to wait for each service
# How often FerretDB trims capped collections (start_ferretdb says why 1s; a Go duration).
FERRETDB_CAPPED_CLEANUP=${OUTBOX_FERRETDB_CAPPED_CLEANUP:-1s}
[[ $FERRETDB_CAPPED_CLEANUP =~ ^[0-9]+(ms|s|m|h)$ ]] ||
    { echo "services: OUTBOX_FERRETDB_CAPPED_CLEANUP must be a duration such as 1s or 1m" >&2; exit 2; }

# Debian puts nats-server in /usr/sbin and the Go tarball in /usr/local/go/bin; neither is
# always on a non-login PATH.
PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

say() { echo "services: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- installing what is missing

apt_install() {
    say "installing $* (apt)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get install -y -o DPkg::Lock::Timeout=600 "$@" >"$LOGS/apt.log" 2>&1; then
        # a fresh machine may not have package lists yet
        $sudo apt-get update -o DPkg::Lock::Timeout=600 >>"$LOGS/apt.log" 2>&1 || true
        $sudo apt-get install -y -o DPkg::Lock::Timeout=600 "$@" >>"$LOGS/apt.log" 2>&1 ||
            die "apt-get install $* failed, see $LOGS/apt.log"
    fi
}

ensure_tools() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    command -v nats-server >/dev/null || missing+=(nats-server)
    command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null || missing+=(maven)
    command -v kcat >/dev/null || missing+=(kcat)
    command -v openssl >/dev/null || missing+=(openssl)  # make-test-ca.sh
    # pymongo: replica-set setup without mongosh, and ferretdb/check-tailable.py
    /usr/bin/python3 -c 'import pymongo' 2>/dev/null || missing+=(python3-pymongo)
    if [ "$(mongodb_kind)" = ferretdb ]; then
        command -v patch >/dev/null || missing+=(patch)
        command -v go >/dev/null || missing+=(golang-go)  # fallback; Go >= 1.21 is needed
    fi
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# ---------------------------------------------------------------- process helpers

# pid_of NAME: pid from NAME's pidfile if that process is alive and is the expected program
pid_of() {
    local name=$1 pid
    [ -f "$PIDS/$name.pid" ] || return 1
    pid=$(cat "$PIDS/$name.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    # guard against a recycled pid: the command line must name the program we started
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(program_of "$name")" || return 1
    echo "$pid"
}

program_of() {
    case $1 in
    mongodb) if [ "$(cat "$PIDS/mongodb.kind" 2>/dev/null)" = mongod ]; then echo mongod; else echo ferretdb; fi ;;
    redis) echo redis-server ;;
    nats) echo nats-server ;;
    kafka) echo kafka.Kafka ;;
    esac
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ready NAME PORT LOG CHECK...: wait until CHECK succeeds, failing early if NAME's process died
wait_ready() {
    local name=$1 port=$2 log=$3
    shift 3
    local deadline=$((SECONDS + START_TIMEOUT)) pid
    # The raw pid, not pid_of: right after the fork the child may not have
    # exec'd the server yet, and its command line would not name it.
    pid=$(cat "$PIDS/$name.pid" 2>/dev/null)
    until "$@" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 2>/dev/null || true
            die "$name exited while starting (port $port); log: $log"
        fi
        if [ $SECONDS -ge $deadline ]; then
            tail -n 20 "$log" >&2 2>/dev/null || true
            die "$name did not accept connections on 127.0.0.1:$port within ${START_TIMEOUT}s; log: $log"
        fi
        sleep 0.1
    done
}

# free_port NAME PORT: refuse to start when something else already listens on PORT
free_port() {
    if port_open "$2"; then
        die "port $2 for $1 is already in use by a process services.sh did not start (ss -ltnp 'sport = :$2')"
    fi
}

# stop NAME: TERM the process from NAME's pidfile, KILL it after 15 s
stop() {
    local name=$1 pid i
    if pid=$(pid_of "$name"); then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) ignored SIGTERM, killing it"
            kill -9 "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$PIDS/$name.pid"
}

# ---------------------------------------------------------------- MongoDB-compatible server

mongodb_kind() {
    case ${OUTBOX_SERVICES_MONGODB:-auto} in
    mongod | ferretdb) echo "$OUTBOX_SERVICES_MONGODB" ;;
    auto) if command -v mongod >/dev/null; then echo mongod; else echo ferretdb; fi ;;
    *) die "OUTBOX_SERVICES_MONGODB must be auto, mongod or ferretdb" ;;
    esac
}

# ferretdb_bin: path of the patched FerretDB binary, building it when the patch changed
ferretdb_bin() {
    local hash dir bin tmp src
    hash=$(sha256sum "$FERRETDB_PATCH" | cut -c1-12)
    dir=$STATE/ferretdb-$FERRETDB_VERSION-$hash
    bin=$dir/ferretdb
    if [ -x "$bin" ]; then
        echo "$bin"
        return
    fi
    command -v go >/dev/null || die "go is not on PATH (and apt's golang-go did not provide it)"
    say "building FerretDB $FERRETDB_VERSION with $(basename "$FERRETDB_PATCH") (takes a few minutes once)"
    local blog=$LOGS/ferretdb-build.log
    tmp=$(mktemp -d "$STATE/ferretdb-build.XXXXXX")
    (
        set -e
        cd "$tmp"
        # the module cache copy is read-only and lacks build/version/version.txt, without which
        # the binary panics at start: build from a writable copy
        src=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
        [ -d "$src" ] || { echo "go mod download gave no module directory"; exit 1; }
        cp -r "$src" src
        chmod -R u+w src
        cd src
        echo "$FERRETDB_VERSION" >build/version/version.txt
        patch -p1 --no-backup-if-mismatch <"$FERRETDB_PATCH"
        GOFLAGS="${GOFLAGS:-} -buildvcs=false" go build -trimpath -o "$tmp/ferretdb" ./cmd/ferretdb
    ) >"$blog" 2>&1 || {
        tail -n 20 "$blog" >&2
        rm -rf "$tmp"
        die "FerretDB build failed; log: $blog"
    }
    mkdir -p "$dir"
    mv "$tmp/ferretdb" "$bin"
    rm -rf "$tmp"
    # drop builds made with other versions of the patch
    find "$STATE" -maxdepth 1 -name "ferretdb-$FERRETDB_VERSION-*" ! -path "$dir" -exec rm -rf {} +
    echo "$bin"
}

start_ferretdb() {
    local bin data=$RUN/ferretdb log=$LOGS/mongodb.log
    bin=$(ferretdb_bin)
    rm -rf "$data"
    mkdir -p "$data/sqlite" "$data/state"
    echo ferretdb >"$PIDS/mongodb.kind"
    echo "$FERRETDB_CAPPED_CLEANUP" >"$PIDS/mongodb.capped_cleanup"
    free_port mongodb-tls "$MONGODB_TLS_PORT"
    # --test-capped-cleanup-interval: trim capped collections every second (default 1m) so
    # wrap-around tests are quick; FerretDB trims lazily, MongoDB on insert. Each round reads
    # every capped collection (0.16 of a core for one of 60,000 events, measured), which the
    # benchmark must not count as reading: bench/run starts its servers with FerretDB's own 1m
    # (OUTBOX_FERRETDB_CAPPED_CLEANUP).
    # --listen-tls: the same server (same data) over TLS with the test CA's server certificate;
    # --listen-tls-ca-file makes FerretDB require a client certificate signed by that CA.
    setsid "$bin" \
        --handler=sqlite --sqlite-url="file:$data/sqlite/" \
        --listen-addr="127.0.0.1:$MONGODB_PORT" --state-dir="$data/state" \
        --listen-tls="127.0.0.1:$MONGODB_TLS_PORT" \
        --listen-tls-cert-file="$TLS_DIR/server.pem" --listen-tls-key-file="$TLS_DIR/server-key.pem" \
        --listen-tls-ca-file="$TLS_DIR/ca.pem" \
        --debug-addr=- --telemetry=disable --log-level=warn \
        --test-capped-cleanup-interval="$FERRETDB_CAPPED_CLEANUP" \
        </dev/null >"$log" 2>&1 9>&- &
    echo $! >"$PIDS/mongodb.pid"
    wait_ready mongodb "$MONGODB_PORT" "$log" port_open "$MONGODB_PORT"
    wait_ready mongodb "$MONGODB_TLS_PORT" "$log" port_open "$MONGODB_TLS_PORT"
}

start_mongod() {
    local data=$RUN/mongod log=$LOGS/mongodb.log
    rm -rf "$data"
    mkdir -p "$data"
    echo mongod >"$PIDS/mongodb.kind"
    : >"$log"
    setsid mongod --replSet rs0 --bind_ip 127.0.0.1 --port "$MONGODB_PORT" --dbpath "$data" \
        --logpath "$log" --logappend </dev/null >>"$log" 2>&1 9>&- &
    echo $! >"$PIDS/mongodb.pid"
    wait_ready mongodb "$MONGODB_PORT" "$log" port_open "$MONGODB_PORT"
    say "initiating replica set rs0"
    wait_ready mongodb "$MONGODB_PORT" "$log" mongod_primary
}

# mongod_primary: initiate rs0 if needed; succeed once this node is a writable primary
mongod_primary() {
    # rs.initiate throws (mongosh) or returns ok:0 (legacy mongo) once initiated: both are fine
    local js='try { rs.initiate({_id: "rs0", members: [{_id: 0, host: "127.0.0.1:'$MONGODB_PORT'"}]}) } catch (e) {}
              if (!db.adminCommand({isMaster: 1}).ismaster) { quit(1) }'
    if command -v mongosh >/dev/null; then
        mongosh --quiet --port "$MONGODB_PORT" --eval "$js" >/dev/null
    elif command -v mongo >/dev/null; then
        mongo --quiet --port "$MONGODB_PORT" --eval "$js" >/dev/null
    else
        /usr/bin/python3 - "$MONGODB_PORT" <<'EOF'
import sys
import pymongo
from pymongo.errors import OperationFailure
port = int(sys.argv[1])
c = pymongo.MongoClient("127.0.0.1", port, directConnection=True, serverSelectionTimeoutMS=2000)
try:
    c.admin.command("replSetInitiate", {"_id": "rs0", "members": [{"_id": 0, "host": "127.0.0.1:%d" % port}]})
except OperationFailure as e:
    if e.code != 23:  # AlreadyInitialized
        raise
sys.exit(0 if c.admin.command("isMaster").get("ismaster") else 1)
EOF
    fi
}

# The pace the running FerretDB trims at: as start_ferretdb recorded it, or
# 1s for one started before services.sh recorded it (it always used 1s).
running_capped_cleanup() {
    cat "$PIDS/mongodb.capped_cleanup" 2>/dev/null || echo 1s
}

up_mongodb() {
    if pid_of mongodb >/dev/null; then
        say "mongodb ($(cat "$PIDS/mongodb.kind")) already running"
        # A FerretDB that trims slower than asked (bench/run's 1m, when tests want 1s) makes
        # wrap-around tests wait for a gap that comes late: say so rather than let them fail.
        local running
        running=$(running_capped_cleanup)
        if [ "$(cat "$PIDS/mongodb.kind")" = ferretdb ] && [ "$running" != "$FERRETDB_CAPPED_CLEANUP" ]; then
            say "warning: this FerretDB trims capped collections every $running, not $FERRETDB_CAPPED_CLEANUP" \
                "(OUTBOX_FERRETDB_CAPPED_CLEANUP); \`services.sh down\` and up again to change it"
        fi
        return
    fi
    free_port mongodb "$MONGODB_PORT"
    if [ "$(mongodb_kind)" = mongod ]; then start_mongod; else start_ferretdb; fi
    say "mongodb ($(cat "$PIDS/mongodb.kind")) up on 127.0.0.1:$MONGODB_PORT"
}

# ---------------------------------------------------------------- redis and nats

redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping)" = PONG ]; }

up_redis() {
    if pid_of redis >/dev/null; then
        say "redis already running"
        return
    fi
    free_port redis "$REDIS_PORT"
    local data=$RUN/redis log=$LOGS/redis.log
    rm -rf "$data"
    mkdir -p "$data"
    : >"$log"
    setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$data" \
        --appendonly yes --appendfsync always --save "" \
        --logfile "$log" --daemonize no </dev/null >>"$log" 2>&1 9>&- &
    echo $! >"$PIDS/redis.pid"
    wait_ready redis "$REDIS_PORT" "$log" redis_ready
    say "redis up on 127.0.0.1:$REDIS_PORT"
}

# nats_ready: the server greets with an INFO line that says whether JetStream is on
nats_ready() (
    exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT"
    read -r -t 2 info <&3
    [[ $info == INFO* && $info == *'"jetstream":true'* ]]
)

up_nats() {
    if pid_of nats >/dev/null; then
        say "nats already running"
        return
    fi
    free_port nats "$NATS_PORT"
    local data=$RUN/nats log=$LOGS/nats.log
    rm -rf "$data"
    mkdir -p "$data"
    : >"$log"
    # no -m: the HTTP monitoring port stays off
    setsid nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$data" -l "$log" \
        </dev/null >>"$log" 2>&1 9>&- &
    echo $! >"$PIDS/nats.pid"
    wait_ready nats "$NATS_PORT" "$log" nats_ready
    say "nats up on 127.0.0.1:$NATS_PORT (JetStream)"
}

# ---------------------------------------------------------------- env file and commands

# ---------------------------------------------------------------- Kafka (KRaft, one node)

# kafka_lib: the broker's jars, resolved from Maven Central once per pom
kafka_lib() {
    local pom=$HERE/kafka/pom.xml hash dir
    hash=$(sha256sum "$pom" | cut -c1-12)
    dir=$STATE/kafka-$KAFKA_VERSION-$hash/lib
    if [ ! -f "$dir/.complete" ]; then
        say "resolving Apache Kafka $KAFKA_VERSION jars with Maven (once)"
        rm -rf "$dir.tmp"
        mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dir.tmp" \
            >"$LOGS/kafka-maven.log" 2>&1 || { tail -20 "$LOGS/kafka-maven.log" >&2; die "maven failed; log: $LOGS/kafka-maven.log"; }
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
        touch "$dir/.complete"
        find "$STATE" -maxdepth 1 -name 'kafka-*' ! -name "kafka-$KAFKA_VERSION-$hash" -exec rm -rf {} +
    fi
    echo "$dir"
}

# (grep reads kcat's whole answer: with pipefail, grep -q leaving early at a
# long topic list would kill kcat with SIGPIPE and fail the pipeline)
kafka_ready() { grep -q "broker 1 at" <<<"$(kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 2 2>/dev/null)"; }

# kafka_sasl_ready: the SASL_SSL listener takes the test user's password and the test CA
# (PLAIN: Debian's kcat has librdkafka 2.0.2, whose SCRAM Kafka 4.x refuses, see up_kafka)
kafka_sasl_ready() {
    grep -q "broker 1 at" <<<"$(kcat -b "127.0.0.1:$KAFKA_SASL_PORT" -X security.protocol=SASL_SSL \
        -X sasl.mechanism=PLAIN -X sasl.username="$KAFKA_SASL_USER" -X sasl.password="$KAFKA_SASL_PASSWORD" \
        -X ssl.ca.location="$TLS_DIR/ca.pem" -L -m 2 2>/dev/null)"
}

ensure_ca() { bash "$HERE/make-test-ca.sh" "$TLS_DIR" || die "making the test CA in $TLS_DIR failed"; }

# up_kafka: keeps its data across stop-kafka/start-kafka (only `down`
# removes it), so a test can stop the broker mid-stream and bring the same
# log back.
up_kafka() {
    if pid_of kafka >/dev/null; then
        say "kafka already running"
        return
    fi
    free_port kafka "$KAFKA_PORT"
    free_port kafka-controller "$KAFKA_CONTROLLER_PORT"
    free_port kafka-sasl "$KAFKA_SASL_PORT"
    ensure_ca
    local lib data=$RUN/kafka log=$LOGS/kafka.log conf
    lib=$(kafka_lib)
    mkdir -p "$data"
    conf=$data/server.properties
    # SASL_SSL: the test CA's server certificate from a PEM file (certificate and unencrypted
    # PKCS#8 key, so no ssl.key.password). SCRAM-SHA-512, its user made at format time, and
    # PLAIN with the same user and password: librdkafka before 2.6.1 (Debian 12 has 2.0.2) sends
    # a SCRAM nonce that Kafka 4.x rejects as invalid credentials (librdkafka PR #4895), so
    # with it only PLAIN can authenticate here. Brokers talk to each other over PLAINTEXT.
    cat >"$conf" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/server-bundle.pem
log.dirs=$data/log
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
    : >"$log"
    if [ ! -f "$data/log/meta.properties" ]; then
        local uuid
        uuid=$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>>"$log" | tail -1)
        java -cp "$lib/*" kafka.tools.StorageTool format -t "$uuid" -c "$conf" --standalone \
            --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
            >>"$log" 2>&1 || die "kafka storage format failed; log: $log"
        touch "$data/scram-user"
    fi
    setsid java -Xms256m -Xmx768m -XX:+UseSerialGC -Dkafka.logfile="$log" \
        -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
        -cp "$lib/*" kafka.Kafka "$conf" </dev/null >>"$log" 2>&1 9>&- &
    echo $! >"$PIDS/kafka.pid"
    local saved=$START_TIMEOUT
    START_TIMEOUT=$((START_TIMEOUT > 120 ? START_TIMEOUT : 120)) # a JVM on 2 cores
    wait_ready kafka "$KAFKA_PORT" "$log" kafka_ready
    if [ ! -f "$data/scram-user" ]; then
        # a log formatted before the SASL_SSL listener existed: add the user through the
        # broker (a JVM start, about 5 s, once)
        say "adding the SCRAM-SHA-512 user $KAFKA_SASL_USER to the existing Kafka log"
        java -cp "$lib/*" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
            --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
            --add-config "SCRAM-SHA-512=[password=$KAFKA_SASL_PASSWORD]" >>"$log" 2>&1 ||
            die "adding the SCRAM user failed; log: $log"
        touch "$data/scram-user"
    fi
    wait_ready kafka "$KAFKA_SASL_PORT" "$log" kafka_sasl_ready
    START_TIMEOUT=$saved
    say "kafka up on 127.0.0.1:$KAFKA_PORT, SASL_SSL on $KAFKA_SASL_PORT (KRaft, Apache Kafka $KAFKA_VERSION)"
}

write_env() {
    local kind uri
    kind=$(cat "$PIDS/mongodb.kind")
    uri="mongodb://127.0.0.1:$MONGODB_PORT/"
    [ "$kind" = mongod ] && uri="${uri}?replicaSet=rs0"
    # The TLS listener exists only with FerretDB, and only if this FerretDB was started by a
    # services.sh that knew about it (an older one stays up until `down`).
    local tls_uri="" ferretdb=""
    if [ "$kind" = ferretdb ] && port_open "$MONGODB_TLS_PORT"; then
        tls_uri="mongodb://127.0.0.1:$MONGODB_TLS_PORT/?tls=true&tlsCAFile=$TLS_DIR/ca.pem&tlsCertificateKeyFile=$TLS_DIR/client-bundle.pem"
    fi
    # The FerretDB binary, for tests that start a FerretDB of their own (a TLS listener with
    # the expired certificate, say): the path of the running one.
    local cleanup=""
    if [ "$kind" = ferretdb ]; then
        ferretdb=$(readlink "/proc/$(cat "$PIDS/mongodb.pid")/exe" 2>/dev/null || true)
        cleanup=$(running_capped_cleanup)
    fi
    local sasl=""
    if port_open "$KAFKA_SASL_PORT"; then
        sasl="OUTBOX_TEST_KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT
OUTBOX_TEST_KAFKA_SASL_USER=$KAFKA_SASL_USER
OUTBOX_TEST_KAFKA_SASL_PASSWORD=$KAFKA_SASL_PASSWORD
OUTBOX_TEST_KAFKA_SASL_MECHANISMS=SCRAM-SHA-512,PLAIN"
    fi
    cat >"$ENV_FILE.tmp" <<EOF
# Written by tests/services/services.sh up; removed by services.sh down.
OUTBOX_TEST_MONGODB_URI=$uri
OUTBOX_TEST_MONGODB_KIND=$kind
OUTBOX_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
OUTBOX_TEST_NATS_URL=nats://127.0.0.1:$NATS_PORT
OUTBOX_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
OUTBOX_TEST_TLS_DIR=$TLS_DIR
${tls_uri:+OUTBOX_TEST_MONGODB_TLS_URI='$tls_uri'}
${ferretdb:+OUTBOX_TEST_FERRETDB=$ferretdb}
${cleanup:+OUTBOX_TEST_FERRETDB_CAPPED_CLEANUP=$cleanup}
$sasl
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

cmd_up() {
    ensure_tools
    ensure_ca
    up_mongodb
    up_redis
    up_nats
    up_kafka
    write_env
    say "env file: $ENV_FILE"
}

cmd_down() {
    stop kafka
    stop nats
    stop redis
    stop mongodb
    rm -f "$PIDS/mongodb.kind" "$ENV_FILE"
    rm -rf "$RUN"
}

# Exit status 0 when every service is up, 3 otherwise (as systemctl status).
cmd_status() {
    local name port pid what all_up=0
    for name in mongodb redis nats kafka; do
        case $name in
        mongodb) port=$MONGODB_PORT what="mongodb ($(cat "$PIDS/mongodb.kind" 2>/dev/null || mongodb_kind))" ;;
        redis) port=$REDIS_PORT what=redis ;;
        nats) port=$NATS_PORT what=nats ;;
        kafka) port=$KAFKA_PORT what=kafka ;;
        esac
        if pid=$(pid_of "$name"); then
            if port_open "$port"; then
                echo "$what: up, pid $pid, 127.0.0.1:$port"
            else
                echo "$what: starting or stuck, pid $pid, 127.0.0.1:$port not accepting; log: $LOGS/$name.log"
                all_up=3
            fi
        else
            echo "$what: down"
            all_up=3
        fi
    done
    return $all_up
}

main() {
    mkdir -p "$LOGS" "$PIDS"
    case ${1:-} in
    up | down)
        # one up/down at a time per state dir (servers are started with fd 9 closed)
        exec 9>"$STATE/.lock"
        flock 9
        "cmd_$1"
        ;;
    status) cmd_status ;;
    stop-kafka | start-kafka)
        # For tests of broker outages: the broker stops and starts again
        # with its data (only `down` deletes it).
        exec 9>"$STATE/.lock"
        flock 9
        if [ "$1" = stop-kafka ]; then stop kafka; else up_kafka; fi
        ;;
    env)
        echo "$ENV_FILE"
        [ -f "$ENV_FILE" ] || { say "$ENV_FILE does not exist: run services.sh up"; exit 1; }
        ;;
    *)
        echo "usage: $0 up|down|status|env|stop-kafka|start-kafka" >&2
        exit 2
        ;;
    esac
}

main "$@"
