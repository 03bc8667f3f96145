#!/usr/bin/env bash
# Demo 2: `fcgi gateway` (fcgi-cli) in front of a real php-fpm (started here, with its own
# config: one pool on loopback TCP, one on a Unix socket). The PHP page is
# examples/php/site/index.php, which answers with what PHP saw, as JSON.
#
# A. plain HTTP → php-fpm over the Unix socket, split-path script resolution:
#    GET with a query string via the index, PATH_INFO, POST form and a 200 kB body, HTTP/2
#    (prior knowledge), 404 for a non-script, for a missing script and for the "uploads
#    hole" (checked in the local root), 400 for traversal, SERVER_NAME from the Host.
# B. HTTPS with a self-signed certificate → php-fpm over TCP: curl verifies it with --cacert
#    (and fails without), the printed fingerprint is the certificate's, HTTP/2 via ALPN and
#    HTTP/1.1, HTTPS=on reaches PHP, POST over TLS.
# C. --front-controller index.php: any path runs index.php with the original REQUEST_URI.
# D. a backend nobody listens on: 502. A bad argument: an error and exit status 2.
# F. --try-files index.php (run before D): static files (tower-http: type, ranges), an
#    upload served and never run, pretty URLs and the uploads hole to the front controller.
# G. two --backend, one dead: requests go to the live one (at most one 502, the request that
#    found the dead one refusing).
# H. no --backend: the echo application in-process, out of the box.
# E. Ctrl-C while a request is in flight (php/site/wait.php, held by a marker file): new
#    connections are refused at once, the request in flight still gets its full answer,
#    then the gateway exits 0.
# Each gateway is stopped with Ctrl-C and must exit 0.
DEMO=gateway
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

build_examples
start_php_fpm
ROOT="$EXAMPLES_DIR/php/site"

say "A. HTTP → php-fpm on $PHP_FPM_UNIX (split path, index index.php)"
start gw-a "$FCGI" gateway --listen 127.0.0.1:0 --backend "$PHP_FPM_UNIX" --root "$ROOT"
pid=$LAST_PID
wait_for_url gw-a "$pid"
port=${URL##*:}

req 200 "$URL/?x=1&name=fcgi%20http"
has '"source":"php"' '"method":"GET"' '"script_name":"/index.php"' \
  "\"script_filename\":\"$ROOT/index.php\"" '"query_string":"x=1&name=fcgi%20http"' \
  '"get":{"x":"1","name":"fcgi http"}' '"https":""' '"scheme":"http"' \
  '"server_protocol":"HTTP/1.1"' '"remote_addr":"127.0.0.1"' "\"server_port\":\"$port\""
grep -qi '^x-powered-by-demo: php_gateway' <(curl -sS -D - -o /dev/null "$URL/") \
  || fail "PHP's response header did not come through"

req 200 "$URL/index.php/extra/path?a=b"
has '"script_name":"/index.php"' '"path_info":"/extra/path"' \
  '"request_uri":"/index.php/extra/path?a=b"'

req 200 -d 'name=ada&lang=php' "$URL/index.php"
has '"method":"POST"' '"content_type":"application/x-www-form-urlencoded"' \
  '"content_length":"17"' '"body":"name=ada&lang=php"'

# Over the gateway's 64 KiB buffering threshold: streamed to php-fpm as it arrives.
head -c 200000 /dev/zero | tr '\0' 'b' >"$WORK/upload"
req 200 -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/upload" "$URL/"
has '"content_length":"200000"' "\"body\":\"$(head -c 50 "$WORK/upload")"
[ "$(grep -o 'b' <<<"$BODY" | wc -l)" -ge 200000 ] || fail "the 200 kB body did not reach PHP whole"

req 200 --http2-prior-knowledge "$URL/index.php?h2=1"
[ "$HTTP_VERSION" = 2 ] || fail "expected HTTP/2, curl says HTTP/$HTTP_VERSION"
has '"server_protocol":"HTTP/2.0"' '"get":{"h2":"1"}'

req 404 "$URL/README.txt"          # not a *.php: never sent to php-fpm
req 404 "$URL/missing.php"         # not a file in the root: never sent to php-fpm
# The "uploads hole": an upload with PHP inside, reached as a directory. php-fpm's
# cgi.fix_pathinfo=1 would walk back and run uploads/avatar.jpg; the gateway sees no such
# script in the root and answers 404 itself.
req 404 "$URL/uploads/avatar.jpg/x.php"
[[ "$BODY" != *"UPLOADS HOLE"* ]] || fail "the uploaded file ran as PHP"
req 200 -H 'Host: shop.example:8443' "$URL/index.php"
has '"server_name":"shop.example"' '"host":"shop.example:8443"'   # SERVER_NAME from Host
req 400 --path-as-is "$URL/../../etc/passwd.php"
say "A: GET, PATH_INFO, POST, 200 kB upload, HTTP/2, 404/404/400: ok"
stop_gracefully gw-a "$pid"

say "B. HTTPS (self-signed) → php-fpm on $PHP_FPM_TCP"
start gw-b "$FCGI" gateway --listen 127.0.0.1:0 --backend "$PHP_FPM_TCP" --root "$ROOT" \
  --tls-self-signed --cert-out "$WORK/cert.pem"
pid=$LAST_PID
wait_for_url gw-b "$pid"
[[ $URL == https://* ]] || fail "expected an https:// URL, got $URL"
port=${URL##*:}
# The certificate is for localhost and 127.0.0.1: both names verify against it.
for host in localhost 127.0.0.1; do
  req 200 --cacert "$WORK/cert.pem" "https://$host:$port/index.php?tls=1"
  [ "$HTTP_VERSION" = 2 ] || fail "expected HTTP/2 via ALPN, curl says HTTP/$HTTP_VERSION"
  has '"https":"on"' '"scheme":"https"' '"server_protocol":"HTTP/2.0"' '"get":{"tls":"1"}'
done
req 200 --http1.1 --cacert "$WORK/cert.pem" -d 'secret=1' "https://localhost:$port/"
[ "$HTTP_VERSION" = 1.1 ] || fail "expected HTTP/1.1, curl says HTTP/$HTTP_VERSION"
has '"server_protocol":"HTTP/1.1"' '"method":"POST"' '"body":"secret=1"' '"https":"on"'
# Without the certificate, curl must refuse the connection (exit 60: peer certificate
# cannot be authenticated): the check above was a real verification.
set +e
curl -sS --max-time 10 -o /dev/null "https://localhost:$port/" 2>"$WORK/curl-err.txt"
code=$?
set -e
[ "$code" = 60 ] || fail "curl without --cacert: exit $code, expected 60 ($(cat "$WORK/curl-err.txt"))"
printed=$(grep -oE 'SHA-256: +[0-9A-F:]+' "$WORK/gw-b.log" | awk '{print $2}')
[ -n "$printed" ] || fail "no fingerprint printed"
if command -v openssl >/dev/null; then
  actual=$(openssl x509 -in "$WORK/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
  [ "$printed" = "$actual" ] || fail "printed fingerprint $printed, certificate has $actual"
  say "B: fingerprint matches the certificate (openssl)"
fi
say "B: --cacert (localhost, 127.0.0.1), HTTP/2 ALPN, HTTP/1.1, HTTPS=on, no-CA refusal: ok"
stop_gracefully gw-b "$pid"

say "C. --front-controller index.php → php-fpm on $PHP_FPM_UNIX"
start gw-c "$FCGI" gateway --listen 127.0.0.1:0 --backend "$PHP_FPM_UNIX" --root "$ROOT" \
  --front-controller index.php
pid=$LAST_PID
wait_for_url gw-c "$pid"
req 200 "$URL/some/route?page=2"
has '"script_name":"/index.php"' '"request_uri":"/some/route?page=2"' '"path_info":""' \
  '"get":{"page":"2"}'
req 200 "$URL/README.txt"
has '"script_name":"/index.php"' '"request_uri":"/README.txt"'
say "C: every path runs index.php with its own REQUEST_URI: ok"
stop_gracefully gw-c "$pid"

say "F. --try-files index.php: a PHP site with a stylesheet and an upload directory"
start gw-f "$FCGI" gateway --listen 127.0.0.1:0 --backend "$PHP_FPM_UNIX" --root "$ROOT" \
  --try-files index.php
pid=$LAST_PID
wait_for_url gw-f "$pid"
req 200 -D "$WORK/css-head" "$URL/assets/style.css"     # a static file, by tower-http
has 'font-family: sans-serif'
grep -qi '^content-type: text/css' "$WORK/css-head" || fail "style.css: not text/css"
req 206 -r 0-3 "$URL/assets/style.css"                   # ranges
[ "$BODY" = "body" ] || fail "range 0-3 of style.css: $BODY"
req 200 "$URL/uploads/avatar.jpg"                         # an upload is served, never run
has '<?php echo "UPLOADS HOLE"'
req 200 "$URL/uploads/avatar.jpg/x.php"                   # no such file: the front controller
has '"script_name":"/index.php"' '"request_uri":"/uploads/avatar.jpg/x.php"'
lacks 'UPLOADS HOLE'
req 200 "$URL/blog/2024/hello-world?ref=home"             # a pretty URL: the front controller
has '"script_name":"/index.php"' '"request_uri":"/blog/2024/hello-world?ref=home"'
req 200 "$URL/index.php/extra"                            # an existing script, PATH_INFO after it
has '"script_name":"/index.php"' '"path_info":"/extra"'
req 301 "$URL/uploads"                                    # a directory gets its slash
say "F: static files (type, ranges), uploads served not run, pretty URLs, PATH_INFO, 301: ok"
stop_gracefully gw-f "$pid"

say "D. errors"
start gw-d "$FCGI" gateway --listen 127.0.0.1:0 --backend "unix:$WORK/nobody.sock" \
  --root "$ROOT"
pid=$LAST_PID
wait_for_url gw-d "$pid"
req 502 "$URL/index.php"
has "502 Bad Gateway"
stop_gracefully gw-d "$pid"
status=0
"$FCGI" gateway --backend nonsense --root "$ROOT" >"$WORK/usage.log" 2>&1 || status=$?
[ "$status" = 2 ] || fail "a bad --backend: exit status $status, expected 2"
grep -q "^error: invalid value 'nonsense' for '--backend" "$WORK/usage.log" \
  || fail "a bad --backend was not reported"
say "D: 502 for a dead backend, an error + exit 2 for a bad argument: ok"

say "G. two backends, one of them dead: balanced, the dead one skipped"
start gw-g "$FCGI" gateway --listen 127.0.0.1:0 --backend "unix:$WORK/nobody.sock" \
  --backend "$PHP_FPM_TCP" --root "$ROOT"
pid=$LAST_PID
wait_for_url gw-g "$pid"
failed=0
for ((i = 0; i < 20; i++)); do
  out=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$URL/index.php") \
    || fail "curl $URL/index.php failed"
  case $out in
    200) ;;
    502) failed=$((failed + 1)) ;;
    *) fail "two backends: status $out" ;;
  esac
done
# Sequential requests: only the first one sent to the dead backend can fail.
[ "$failed" -le 1 ] || fail "two backends, one dead: $failed of 20 requests failed"
grep -q "taken out of the balance" "$WORK/gw-g.log" \
  || fail "the dead backend was not reported as taken out of the balance"
stop_gracefully gw-g "$pid"
say "G: 20 requests over a dead and a live backend, $failed failed (at most 1): ok"

say "H. no --backend: the echo application, in-process"
start gw-h "$FCGI" gateway --listen 127.0.0.1:0
pid=$LAST_PID
wait_for_url gw-h "$pid"
req 200 -d 'ping' "$URL/any/where.php?q=1"
has 'role: responder' 'param: SCRIPT_NAME=/any/where.php' 'param: QUERY_STRING=q=1' 'stdin-length: 4'
stop_gracefully gw-h "$pid"
say "H: the echo application answers without any backend: ok"

say "E. Ctrl-C with a request in flight"
start gw-e "$FCGI" gateway --listen 127.0.0.1:0 --backend "$PHP_FPM_UNIX" --root "$ROOT"
pid=$LAST_PID
wait_for_url gw-e "$pid"
start inflight curl -sS --max-time 20 -o "$WORK/inflight.body" -w '%{http_code}\n' \
  "$URL/wait.php"
curl_pid=$LAST_PID
for ((i = 0; i < 100; i++)); do
  [ -e "$WORK/markers/started" ] && break
  kill -0 "$curl_pid" 2>/dev/null || fail "the in-flight request ended early"
  sleep 0.1
done
[ -e "$WORK/markers/started" ] || fail "wait.php did not start within 10 s"
kill -INT "$pid"
# The listener closes at once: a new connection fails while the old request is still held.
refused=""
for ((i = 0; i < 50; i++)); do
  if ! curl -s --max-time 2 -o /dev/null "$URL/index.php" 2>/dev/null; then
    refused=1
    break
  fi
  sleep 0.1
done
[ -n "$refused" ] || fail "new connections were still served 5 s after Ctrl-C"
kill -0 "$pid" 2>/dev/null || fail "the gateway exited with a request in flight"
touch "$WORK/markers/release"
wait_gone "$curl_pid" 150 || fail "the in-flight request did not finish"
wait "$curl_pid" || fail "the in-flight request failed after Ctrl-C"
forget_pid "$curl_pid"
grep -qx 200 "$WORK/inflight.log" || fail "the in-flight request: status $(cat "$WORK/inflight.log")"
grep -qx released "$WORK/inflight.body" || fail "the in-flight request: $(cat "$WORK/inflight.body")"
wait_gone "$pid" 150 || fail "the gateway did not exit after its last request"
status=0
wait "$pid" || status=$?
forget_pid "$pid"
[ "$status" = 0 ] || fail "the gateway exited with status $status"
say "E: refused new connections, finished the request in flight, exit status 0: ok"

say "all checks passed"
