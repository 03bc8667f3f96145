# shellcheck shell=bash
# Shared by the demo scripts in this directory (sourced, never run on its own).
#
# - Builds the fcgi-http examples once and finds their binaries (wherever CARGO_TARGET_DIR
#   or .cargo/config put the target directory: `cargo metadata` says).
# - Starts processes in the background, remembers their PIDs, and stops exactly those on
#   exit (trap EXIT), TERM first, KILL after a bounded wait.
# - Starts php-fpm with a generated configuration in a temporary directory: one pool on a
#   free loopback TCP port, one on a Unix socket.
# - Small curl-based assertion helpers that print the response and the logs on failure.
#
# Every wait is a bounded poll; every socket is loopback or a Unix socket.

set -euo pipefail

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EXAMPLES_DIR=$(dirname "$SCRIPTS_DIR")
REPO_ROOT=$(cd "$EXAMPLES_DIR/../.." && pwd)
DEMO=${DEMO:-demo}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fcgi-$DEMO.XXXXXX")
PIDS=()

say() { printf '[%s] %s\n' "$DEMO" "$*"; }

# Prints the last lines of every log in $WORK (on failure).
dump_logs() {
  local f
  for f in "$WORK"/*.log; do
    [ -f "$f" ] || continue
    printf '\n----- %s (last 40 lines) -----\n' "$(basename "$f")" >&2
    tail -n 40 "$f" >&2 || true
  done
}

fail() {
  printf '\n[%s] FAIL: %s\n' "$DEMO" "$*" >&2
  dump_logs
  FAILED_LOGS_SHOWN=1
  exit 1
}

# Waits until process $1 is gone, polling $2 times every 0.1 s. Returns 1 if it is still there.
wait_gone() {
  local pid=$1 tries=$2 i
  for ((i = 0; i < tries; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

forget_pid() {
  local pid=$1 kept=() p
  for p in "${PIDS[@]}"; do
    [ "$p" = "$pid" ] || kept+=("$p")
  done
  PIDS=("${kept[@]}")
}

cleanup() {
  local status=$? pid
  trap - EXIT
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    if ! wait_gone "$pid" 50; then
      echo "[$DEMO] process $pid did not stop on TERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ] && [ -z "${FAILED_LOGS_SHOWN:-}" ]; then
    dump_logs
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Example binaries
# ---------------------------------------------------------------------------------------

# Builds the fcgi-http examples and sets BIN to the directory holding them.
build_examples() {
  say "building the fcgi-http examples"
  (cd "$REPO_ROOT" && cargo build -q -p fcgi-http --examples --all-features && cargo build -q -p fcgi-cli)
  local target
  target=$(cd "$REPO_ROOT" && cargo metadata --format-version 1 --no-deps \
    | grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)
  [ -n "$target" ] || fail "cannot find cargo's target directory"
  BIN="$target/debug/examples"
  [ -x "$BIN/reverse_proxy" ] || fail "no example binaries in $BIN"
  # The fcgi command line tool (fcgi-cli): `fcgi gateway` is the PHP gateway.
  FCGI="$target/debug/fcgi"
  [ -x "$FCGI" ] || fail "no fcgi binary at $FCGI"
}

# start NAME CMD ARGS...: runs CMD in the background with output in $WORK/NAME.log, and
# sets LAST_PID.
start() {
  local name=$1
  shift
  "$@" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_for_url NAME PID: waits (up to 15 s) for the example logging to $WORK/NAME.log to
# print the first http(s):// URL it serves, and sets URL to it (without the trailing /).
wait_for_url() {
  local name=$1 pid=$2 i found
  for ((i = 0; i < 150; i++)); do
    found=$(grep -oE 'https?://[^ /]+/' "$WORK/$name.log" 2>/dev/null | head -n 1 || true)
    if [ -n "$found" ]; then
      URL=${found%/}
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || fail "$name exited during start-up"
    sleep 0.1
  done
  fail "$name printed no URL within 15 s"
}

# stop_gracefully NAME PID: sends SIGINT (Ctrl-C) and checks that the process exits with
# status 0 within 15 s, after printing its "stopped" line.
stop_gracefully() {
  local name=$1 pid=$2 status=0
  kill -INT "$pid"
  wait_gone "$pid" 150 || fail "$name did not stop within 15 s of Ctrl-C"
  wait "$pid" || status=$?
  forget_pid "$pid"
  [ "$status" -eq 0 ] || fail "$name exited with status $status after Ctrl-C"
  grep -q "stopped" "$WORK/$name.log" || fail "$name did not say it stopped"
  say "$name: Ctrl-C → graceful stop, exit status 0"
}

# ---------------------------------------------------------------------------------------
# HTTP assertions (curl)
# ---------------------------------------------------------------------------------------

command -v curl >/dev/null || fail "curl is required (apt-get install curl)"

# req EXPECTED_STATUS CURL_ARGS...: one request; sets STATUS, HTTP_VERSION ("1.1", "2")
# and BODY, and fails unless the status is EXPECTED_STATUS.
req() {
  local expected=$1 out
  shift
  out=$(curl -sS --max-time 20 -o "$WORK/body" -w '%{http_code} %{http_version}' "$@") \
    || fail "curl $* failed"
  STATUS=${out%% *}
  HTTP_VERSION=${out##* }
  BODY=$(cat "$WORK/body")
  LAST_REQUEST="curl $*"
  [ "$STATUS" = "$expected" ] \
    || fail "$LAST_REQUEST: status $STATUS, expected $expected; body: $BODY"
}

# has TEXT...: every TEXT occurs in the last BODY (fixed strings).
has() {
  local needle
  for needle in "$@"; do
    grep -qF -- "$needle" <<<"$BODY" || fail "$LAST_REQUEST: expected $needle in: $BODY"
  done
}

# lacks TEXT...: no TEXT occurs in the last BODY.
lacks() {
  local needle
  for needle in "$@"; do
    if grep -qF -- "$needle" <<<"$BODY"; then
      fail "$LAST_REQUEST: unexpected $needle in: $BODY"
    fi
  done
}

# ---------------------------------------------------------------------------------------
# php-fpm
# ---------------------------------------------------------------------------------------

# Sets PHP_FPM to the php-fpm binary. When there is none: a failure under CI=true, otherwise
# a loud SKIPPED and exit 0 (the policy of the Rust tests, fcgi-testkit's require_php_fpm).
require_php_fpm() {
  PHP_FPM=""
  local c
  for c in php-fpm8.2 php-fpm; do
    if command -v "$c" >/dev/null; then
      PHP_FPM=$(command -v "$c")
      break
    fi
    if [ -x "/usr/sbin/$c" ]; then
      PHP_FPM=/usr/sbin/$c
      break
    fi
  done
  if [ -z "$PHP_FPM" ]; then
    PHP_FPM=$(find /usr/sbin -maxdepth 1 -name 'php-fpm*' -type f -perm -u+x 2>/dev/null \
      | sort | tail -n 1 || true)
  fi
  if [ -z "$PHP_FPM" ]; then
    if [ "${CI:-}" = "true" ]; then
      fail "php-fpm not installed (apt-get install php8.2-fpm)"
    fi
    echo "SKIPPED: php-fpm not installed (apt-get install php8.2-fpm)"
    exit 0
  fi
}

# Writes the php-fpm configuration for TCP port $1 to $WORK/php-fpm.conf.
write_php_fpm_conf() {
  local port=$1 user="" pool listen
  if [ "$(id -u)" = 0 ]; then
    # php-fpm refuses to run workers as root unless told (-R and these lines).
    user=$'user = root\ngroup = root'
  fi
  {
    cat <<EOF
[global]
pid = $WORK/php-fpm.pid
error_log = $WORK/php-fpm.log
log_level = notice
daemonize = no
process_control_timeout = 2s
EOF
    for pool in tcp unix; do
      if [ "$pool" = tcp ]; then listen=127.0.0.1:$port; else listen=$WORK/php-fpm.sock; fi
      cat <<EOF

[$pool]
listen = $listen
$user
pm = static
pm.max_children = 2
clear_env = yes
catch_workers_output = yes
decorate_workers_output = no
request_terminate_timeout = 30s
; One line per script run: "METHOD REQUEST_URI", so a demo can tell what PHP executed.
access.log = $WORK/php-access.log
access.format = "%m %{REQUEST_URI}e"
; Where php/site/wait.php signals and waits (the graceful-stop check of php_gateway.sh, which drives fcgi gateway).
env[DEMO_MARKERS] = $WORK/markers
; php-fpm runs with -n (no php.ini): the settings the demos rely on are pinned here.
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
php_admin_flag[expose_php] = off
php_admin_value[post_max_size] = 16M
php_admin_value[memory_limit] = 128M
EOF
    done
  } >"$WORK/php-fpm.conf"
}

# Starts php-fpm (two pools: TCP and Unix socket) and sets PHP_FPM_TCP (tcp:127.0.0.1:PORT)
# and PHP_FPM_UNIX (unix:PATH). A random port may be taken: up to 5 attempts.
start_php_fpm() {
  require_php_fpm
  local attempt port i root_flag=()
  mkdir -p "$WORK/markers"
  if [ "$(id -u)" = 0 ]; then root_flag=(-R); fi
  for ((attempt = 1; attempt <= 5; attempt++)); do
    port=$((20000 + RANDOM % 40000))
    write_php_fpm_conf "$port"
    rm -f "$WORK/php-fpm.log"
    start php-fpm-out "$PHP_FPM" -n -F "${root_flag[@]}" -y "$WORK/php-fpm.conf"
    PHP_FPM_PID=$LAST_PID
    for ((i = 0; i < 150; i++)); do
      if grep -q "ready to handle connections" "$WORK/php-fpm.log" 2>/dev/null; then
        PHP_FPM_TCP=tcp:127.0.0.1:$port
        PHP_FPM_UNIX=unix:$WORK/php-fpm.sock
        say "php-fpm ($PHP_FPM) ready on $PHP_FPM_TCP and $PHP_FPM_UNIX"
        return 0
      fi
      kill -0 "$PHP_FPM_PID" 2>/dev/null || break
      sleep 0.1
    done
    # Not ready: port taken (php-fpm exits) or too slow. Stop it and try another port.
    kill -TERM "$PHP_FPM_PID" 2>/dev/null || true
    wait_gone "$PHP_FPM_PID" 50 || kill -KILL "$PHP_FPM_PID" 2>/dev/null || true
    wait "$PHP_FPM_PID" 2>/dev/null || true
    forget_pid "$PHP_FPM_PID"
    echo "[$DEMO] php-fpm attempt $attempt on port $port failed" >&2
  done
  fail "php-fpm did not start"
}

# How many times PHP ran a request whose REQUEST_URI starts with $1 (php-fpm's access log).
php_runs() {
  local n
  n=$(grep -cE "^[A-Z]+ $1" "$WORK/php-access.log" 2>/dev/null) || true
  echo "${n:-0}"
}

# wait_php_runs PREFIX N: waits (up to 5 s) until php_runs PREFIX is at least N (php-fpm
# writes its access log line when the request ends, a moment after the response).
wait_php_runs() {
  local i
  for ((i = 0; i < 50; i++)); do
    [ "$(php_runs "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "php-fpm's access log shows $(php_runs "$1") runs of $1, expected $2"
}
