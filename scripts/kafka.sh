#!/usr/bin/env bash
# Starts and stops a single-node Apache Kafka broker for the integration tests in
# host/tests/kafka_real.rs and host/tests/kafka_security.rs. The broker runs in KRaft mode
# (broker and controller in one JVM) on 127.0.0.1, on free ports, with its data in a
# temporary directory. Its jars come from Maven Central through `mvn` and are cached in
# .cache/kafka/VERSION/.
#
#   scripts/kafka.sh start   resolve the jars if missing, start the broker, write the env file
#   scripts/kafka.sh stop    stop the broker and delete its data
#
# The broker has three client listeners: PLAINTEXT, SASL_PLAINTEXT with SCRAM-SHA-256 and
# SCRAM-SHA-512 (one test user, created when the storage is formatted), and SSL with a
# certificate for 127.0.0.1 and localhost signed by a test CA that this script creates.
# `start` writes their addresses, the CA file and the test user to target/kafka.env:
# source it before `cargo test`. Needs Java 17 or later, Maven and the openssl command;
# it installs Java and Maven from Debian's packages when missing (that needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

kafka_version=4.1.1
# The binding that routes the broker's SLF4J logging to Log4j 2, which writes it to stdout.
log4j_version=2.25.3
slf4j_version=2.0.17
cache_dir=.cache/kafka/$kafka_version
env_file=target/kafka.env
# The SCRAM user that `start` creates. Its password is random.
scram_user=cardiowatch-test
# Seconds to wait for the broker to accept connections after starting it.
start_timeout_s=60

# Copies the broker's jars and their runtime dependencies into $cache_dir/libs. A
# directory left by an interrupted run has no .complete marker and is resolved again.
resolve_jars() {
    [ -f "$cache_dir/.complete" ] && return 0
    echo "resolving Apache Kafka $kafka_version from Maven Central into $cache_dir" >&2
    rm -rf "$cache_dir"
    mkdir -p "$cache_dir"
    cat >"$cache_dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cardiowatch</groupId>
  <artifactId>test-kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$kafka_version</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>$slf4j_version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>$log4j_version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$log4j_version</version>
    </dependency>
  </dependencies>
</project>
POM
    if ! mvn -B -Dstyle.color=never -f "$cache_dir/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$(realpath "$cache_dir")/libs" \
        >"$cache_dir/mvn.log" 2>&1; then
        echo "resolving Apache Kafka $kafka_version with mvn failed; the end of $cache_dir/mvn.log:" >&2
        tail -n 30 "$cache_dir/mvn.log" >&2
        return 1
    fi
    touch "$cache_dir/.complete"
}

# Prints a TCP port on 127.0.0.1 that nothing listens on. Another process may still take
# it before the broker binds. The broker then fails to start, and `wait_until_ready`
# reports that with the broker's log.
free_port() {
    local port attempt
    for attempt in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "found no free TCP port on 127.0.0.1 after $attempt attempts" >&2
    return 1
}

# wait_until_ready PORT PID LOG: polls until the broker accepts TCP connections on PORT
# and its log reports that it started, so that the first client request finds a ready broker.
wait_until_ready() {
    local port=$1 pid=$2 log=$3
    local deadline=$((SECONDS + start_timeout_s))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
        grep -q "Kafka Server started" "$log"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "the Kafka broker exited before accepting connections on 127.0.0.1:$port;" \
                "the end of its log $log:" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "the Kafka broker did not accept connections on 127.0.0.1:$port within" \
                "${start_timeout_s}s; the end of its log $log:" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# write_config DIR PLAINTEXT_PORT SASL_PORT SSL_PORT CONTROLLER_PORT: one node that is
# both broker and controller. Internal topics have one replica because there is only one
# broker, and consumer groups start rebalancing at once instead of after the default 3 s.
# No authorizer is set, so the SCRAM user may do anything.
write_config() {
    local dir=$1 port=$2 sasl_port=$3 ssl_port=$4 controller_port=$5
    local scram_login="org.apache.kafka.common.security.scram.ScramLoginModule required;"
    cat >"$dir/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sasl_port,SSL://127.0.0.1:$ssl_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sasl_port,SSL://127.0.0.1:$ssl_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$scram_login
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram_login
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$keystore_password
ssl.client.auth=none
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPERTIES
}

# write_certificates DIR: a test CA, a broker certificate it signs for 127.0.0.1 and
# localhost (in a PKCS#12 keystore for the broker), and a second CA that signed nothing,
# for tests that expect an untrusted certificate. With EC P-256 keys this took 0.08 s
# on a 2-core machine. The certificates are valid for 7 days.
write_certificates() {
    local tls=$1/tls
    mkdir -p "$tls"
    local subject key_options=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    for ca in ca other-ca; do
        subject="/CN=cardiowatch test $ca"
        openssl req -x509 "${key_options[@]}" -days 7 -subj "$subject" \
            -keyout "$tls/$ca.key" -out "$tls/$ca.pem" 2>>"$tls/openssl.log"
    done
    openssl req -new "${key_options[@]}" -subj "/CN=localhost" \
        -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>>"$tls/openssl.log"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/broker.ext"
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 7 -extfile "$tls/broker.ext" -out "$tls/broker.pem" \
        2>>"$tls/openssl.log"
    openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" -name broker \
        -passout "pass:$keystore_password" -out "$tls/broker.p12" 2>>"$tls/openssl.log"
}

# Prints 24 random hexadecimal characters, for the test-only passwords.
random_password() {
    head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

install_packages() {
    if command -v java >/dev/null && command -v mvn >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "java or mvn is missing and installing them needs root:" \
            "run \`apt-get install -y openjdk-17-jre-headless maven\` as root" >&2
        exit 1
    fi
    echo "installing Debian's openjdk-17-jre-headless and maven packages" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
}

# Prints a random cluster id as `kafka-storage random-uuid` does: 16 random bytes in
# unpadded URL-safe base64, never starting with '-', which the command line would take
# for an option.
random_cluster_id() {
    local id=-
    while [[ $id == -* ]]; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    echo "$id"
}

start_broker() {
    install_packages
    resolve_jars
    stop_broker
    local dir port sasl_port ssl_port controller_port classpath cluster_id java_options
    local keystore_password scram_password
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cardiowatch-kafka.XXXXXX")
    mkdir -p "$(dirname "$env_file")"
    # Written first, so that `stop` finds the directory even if a start below fails.
    echo "export CARDIOWATCH_TEST_KAFKA_DIR=$dir" >"$env_file"
    port=$(free_port)
    sasl_port=$(free_port)
    ssl_port=$(free_port)
    controller_port=$(free_port)
    # Test-only secrets of a throwaway broker, new on every start.
    keystore_password=$(random_password)
    scram_password=$(random_password)
    write_certificates "$dir" || {
        echo "creating the test certificates in $dir/tls failed:" >&2
        cat "$dir/tls/openssl.log" >&2
        return 1
    }
    write_config "$dir" "$port" "$sasl_port" "$ssl_port" "$controller_port"
    write_log_config

    classpath="$(realpath "$cache_dir")/libs/*"
    java_options=(-Xms256m -Xmx512m -Djava.awt.headless=true
        -Dlog4j2.configurationFile="$(realpath "$cache_dir")/log4j2.properties")
    # A KRaft node needs its storage formatted with a cluster id before its first start.
    # SCRAM credentials written at format time exist before any listener opens.
    cluster_id=$(random_cluster_id)
    java "${java_options[@]}" -cp "$classpath" kafka.tools.StorageTool format \
        --config "$dir/server.properties" --cluster-id "$cluster_id" \
        --add-scram "SCRAM-SHA-256=[name=$scram_user,password=$scram_password]" \
        --add-scram "SCRAM-SHA-512=[name=$scram_user,password=$scram_password]" \
        >"$dir/format.log" 2>&1 || {
        echo "formatting the Kafka storage in $dir/data failed:" >&2
        cat "$dir/format.log" >&2
        return 1
    }

    java "${java_options[@]}" -cp "$classpath" kafka.Kafka "$dir/server.properties" \
        </dev/null >>"$dir/kafka.log" 2>&1 &
    echo $! >"$dir/kafka.pid"
    wait_until_ready "$port" "$!" "$dir/kafka.log"
    cat >>"$env_file" <<ENV
export CARDIOWATCH_TEST_KAFKA_BROKERS=127.0.0.1:$port
export CARDIOWATCH_TEST_KAFKA_SASL_BROKERS=127.0.0.1:$sasl_port
export CARDIOWATCH_TEST_KAFKA_SSL_BROKERS=127.0.0.1:$ssl_port
export CARDIOWATCH_TEST_KAFKA_CA=$dir/tls/ca.pem
export CARDIOWATCH_TEST_KAFKA_OTHER_CA=$dir/tls/other-ca.pem
# Test-only SCRAM credentials of this throwaway broker, made at random on every start.
export CARDIOWATCH_TEST_KAFKA_USER=$scram_user
export CARDIOWATCH_TEST_KAFKA_PASSWORD=$scram_password
ENV
    echo "Kafka $kafka_version on 127.0.0.1: PLAINTEXT $port, SASL_PLAINTEXT $sasl_port," \
        "SSL $ssl_port; data and log in $dir" >&2
    echo "variables written to $env_file" >&2
}

# Sends the broker's log to stdout at INFO, which start_broker redirects to kafka.log.
write_log_config() {
    cat >"$cache_dir/log4j2.properties" <<LOG
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
LOG
}

# Stops the broker, waiting up to 20 s for its controlled shutdown before killing it.
stop_broker() {
    [ -f "$env_file" ] || return 0
    local dir pid
    dir=$(sed -n 's/^export CARDIOWATCH_TEST_KAFKA_DIR=//p' "$env_file")
    if [ -n "$dir" ] && [ -d "$dir" ]; then
        if [ -f "$dir/kafka.pid" ]; then
            pid=$(cat "$dir/kafka.pid")
            if kill -TERM "$pid" 2>/dev/null; then
                for _ in $(seq 1 100); do
                    kill -0 "$pid" 2>/dev/null || break
                    sleep 0.2
                done
                if kill -0 "$pid" 2>/dev/null; then
                    echo "Kafka broker $pid did not stop within 20 s; killing it" >&2
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            fi
        fi
        rm -rf "$dir"
    fi
    rm -f "$env_file"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    start) start_broker ;;
    stop) stop_broker ;;
    *)
        sed -n '8,9p' "$0" >&2
        exit 2
        ;;
esac
