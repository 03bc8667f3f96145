#!/usr/bin/env bash
# Demo 1: the reverse_proxy example (needs nothing installed but curl).
#
# 1. `reverse_proxy --self-test` makes its own round trips and must exit 0.
# 2. The proxy with its FastCGI application on a Unix socket (the default): curl GET with a
#    query string, POST with a body, HTTP/2 (prior knowledge), then Ctrl-C → exit 0, and the
#    socket's temporary directory is gone.
# 3. The same with the FastCGI application on a loopback TCP port (--fastcgi tcp:127.0.0.1:0).
DEMO=reverse_proxy
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

build_examples

say "1. --self-test"
"$BIN/reverse_proxy" --listen 127.0.0.1:0 --self-test >"$WORK/self-test.log" 2>&1 \
  || fail "reverse_proxy --self-test failed"
grep -q "self-test: all cases passed" "$WORK/self-test.log" || fail "self-test did not pass"
grep -c "✓ ok" "$WORK/self-test.log" | grep -qx 4 || fail "self-test did not run 4 cases"

# Round trips through a running proxy; $1 names the run.
round_trips() {
  local name=$1
  req 200 -H 'X-Demo: curl' "$URL/anything?x=1&y=%20two"
  has "method:  GET" "uri:     $URL/anything?x=1&y=%20two" "version: HTTP/1.1" \
    "x-demo: curl" "user-agent: curl/" "client:  127.0.0.1:" "body (0 bytes):"

  req 200 -H 'Content-Type: text/plain' --data-binary 'hello through FastCGI' "$URL/submit"
  has "method:  POST" "content-type: text/plain" "content-length: 21" \
    $'body (21 bytes):\nhello through FastCGI'

  # 100 kB: more than one FastCGI record (64 KiB each) each way.
  head -c 100000 /dev/zero | tr '\0' 'q' >"$WORK/upload"
  req 200 -X PUT --data-binary "@$WORK/upload" "$URL/upload"
  has "method:  PUT" "body (100000 bytes):"

  req 200 --http2-prior-knowledge "$URL/over/h2?z=9"
  [ "$HTTP_VERSION" = 2 ] || fail "expected HTTP/2, curl says HTTP/$HTTP_VERSION"
  has "version: HTTP/2.0" "uri:     $URL/over/h2?z=9"
  say "$name: GET, POST, PUT 100 kB, HTTP/2: ok"
}

say "2. FastCGI over a Unix socket"
start proxy-unix "$BIN/reverse_proxy" --listen 127.0.0.1:0
pid=$LAST_PID
wait_for_url proxy-unix "$pid"
socket=$(grep -oE 'unix:[^ ]+' "$WORK/proxy-unix.log" | head -n 1)
socket=${socket#unix:}
[ -S "$socket" ] || fail "no FastCGI socket at $socket"
round_trips unix
stop_gracefully proxy-unix "$pid"
[ ! -e "$(dirname "$socket")" ] || fail "the socket directory $(dirname "$socket") was left behind"

say "3. FastCGI over loopback TCP"
start proxy-tcp "$BIN/reverse_proxy" --listen 127.0.0.1:0 --fastcgi tcp:127.0.0.1:0
pid=$LAST_PID
wait_for_url proxy-tcp "$pid"
grep -qE 'FastCGI tcp:127\.0\.0\.1:[1-9][0-9]*' "$WORK/proxy-tcp.log" \
  || fail "the FastCGI application did not report its TCP port"
round_trips tcp
stop_gracefully proxy-tcp "$pid"

say "all checks passed"
