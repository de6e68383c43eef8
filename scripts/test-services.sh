#!/usr/bin/env bash
# Starts and stops the metrics stores that the integration tests in host/tests/influx.rs
# write to: InfluxDB 1.x (Debian's `influxdb`) and VictoriaMetrics (Debian's
# `victoria-metrics`). Each runs in the background on 127.0.0.1, on a free port, with its
# data in a temporary directory.
#
#   scripts/test-services.sh start                      install if missing, start both, write the env file
#   scripts/test-services.sh stop                       stop both and delete their data
#   scripts/test-services.sh start-influxd DIR [PORT]   start one more influxd with its data in DIR; prints its URL
#   scripts/test-services.sh stop-influxd DIR           stop the influxd started in DIR
#
# `start` writes `export NAME=VALUE` lines to target/test-services.env: source it before
# `cargo test`. Installing needs root (`apt-get`); a machine with both packages does not.
set -euo pipefail
cd "$(dirname "$0")/.."

env_file=target/test-services.env
# Seconds to wait for a server to respond after starting it.
start_timeout_s=30

install_packages() {
    if command -v influxd >/dev/null && command -v victoria-metrics >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "influxd or victoria-metrics is missing and installing them needs root:" \
            "run \`apt-get install -y influxdb victoria-metrics\` as root" >&2
        exit 1
    fi
    echo "installing Debian's influxdb and victoria-metrics packages" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb victoria-metrics >/dev/null
}

# Prints a TCP port on 127.0.0.1 that nothing listens on. Another process may still take
# it before the server binds. The server then fails to start, and `wait_until_ready`
# reports that with the server's log.
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

# wait_until_ready NAME URL PID LOG: polls URL until it responds with a 2xx status.
wait_until_ready() {
    local name=$1 url=$2 pid=$3 log=$4
    local deadline=$((SECONDS + start_timeout_s))
    until curl --silent --fail --max-time 2 --output /dev/null "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited before responding on $url; the end of its log $log:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$name did not respond on $url within ${start_timeout_s}s; the end of its log $log:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# start_influxd DIR [PORT]: starts influxd with a generated config that binds only
# 127.0.0.1 and keeps every file under DIR. Prints the HTTP URL.
start_influxd() {
    local dir port rpc_port
    dir=$(realpath "$1")
    port=${2:-$(free_port)}
    rpc_port=$(free_port)
    mkdir -p "$dir"
    # The keys are those `influxd config` prints for InfluxDB 1.6.7; the UDP, Graphite,
    # collectd and OpenTSDB listeners are off by default.
    cat >"$dir/influxd.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
CONF
    influxd run -config "$dir/influxd.conf" </dev/null >>"$dir/influxd.log" 2>&1 &
    echo $! >"$dir/influxd.pid"
    wait_until_ready influxd "http://127.0.0.1:$port/ping" "$!" "$dir/influxd.log"
    echo "http://127.0.0.1:$port"
}

start_victoria_metrics() {
    local dir port
    dir=$(realpath "$1")
    port=$(free_port)
    mkdir -p "$dir"
    victoria-metrics -httpListenAddr "127.0.0.1:$port" -storageDataPath "$dir/data" \
        </dev/null >>"$dir/victoria-metrics.log" 2>&1 &
    echo $! >"$dir/victoria-metrics.pid"
    wait_until_ready victoria-metrics "http://127.0.0.1:$port/health" "$!" "$dir/victoria-metrics.log"
    echo "http://127.0.0.1:$port"
}

# stop_pid_file FILE: stops the process whose id FILE contains, waiting up to 10 s
# before killing it.
stop_pid_file() {
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    rm -f "$file"
    # A process stopped with SIGSTOP (the outage test does that) handles SIGTERM only
    # after SIGCONT.
    kill -TERM "$pid" 2>/dev/null || return 0
    kill -CONT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    echo "process $pid from $file did not stop within 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

start_all() {
    install_packages
    stop_all
    local dir influx_url victoria_url
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cardiowatch-test-services.XXXXXX")
    mkdir -p "$(dirname "$env_file")"
    # Written first, so that `stop` finds the directory even if a start below fails.
    echo "export CARDIOWATCH_TEST_SERVICES_DIR=$dir" >"$env_file"
    influx_url=$(start_influxd "$dir/influxdb")
    victoria_url=$(start_victoria_metrics "$dir/victoria-metrics")
    cat >>"$env_file" <<ENV
export CARDIOWATCH_TEST_INFLUXDB_V1_URL=$influx_url
export CARDIOWATCH_TEST_VICTORIA_URL=$victoria_url
ENV
    echo "influxd on $influx_url, victoria-metrics on $victoria_url; data in $dir" >&2
    echo "variables written to $env_file" >&2
}

stop_all() {
    [ -f "$env_file" ] || return 0
    local dir
    dir=$(sed -n 's/^export CARDIOWATCH_TEST_SERVICES_DIR=//p' "$env_file")
    if [ -n "$dir" ] && [ -d "$dir" ]; then
        stop_pid_file "$dir/influxdb/influxd.pid"
        stop_pid_file "$dir/victoria-metrics/victoria-metrics.pid"
        rm -rf "$dir"
    fi
    rm -f "$env_file"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    start) start_all ;;
    stop) stop_all ;;
    start-influxd)
        [ $# -ge 1 ] || { echo "usage: $0 start-influxd DIR [PORT]" >&2; exit 2; }
        start_influxd "$@"
        ;;
    stop-influxd)
        [ $# -eq 1 ] || { echo "usage: $0 stop-influxd DIR" >&2; exit 2; }
        stop_pid_file "$(realpath "$1")/influxd.pid"
        ;;
    *)
        sed -n '7,10p' "$0" >&2
        exit 2
        ;;
esac
