#!/usr/bin/env bash
# Demo 3: the migration example: an axum Router serving /api/health and /api/version in
# Rust, everything else through the gateway to a PHP front controller
# (examples/php/app/index.php), which implements those two routes as well.
#
# Proves:
# - /api/health and /api/version answer "source":"rust", never "source":"php" (over HTTP/1.1
#   and HTTP/2, with a query string, repeatedly), and php-fpm's access log shows PHP never
#   ran for them;
# - the PHP application does answer them with "source":"php" when reached directly (control:
#   fcgi gateway in front of the same app), so it is the router that takes them over;
# - every other route reaches PHP: GET /api/users (with a query string), POST /api/users with
#   a JSON body (201) and a bad body (400), an unknown path (PHP's 404);
# - a method the Rust route does not serve (POST /api/health) gets axum's 405, not PHP;
# - both php-fpm transports work (unix: and tcp:); Ctrl-C stops the server with status 0.
DEMO=migration
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

build_examples
start_php_fpm
ROOT="$EXAMPLES_DIR/php/app"

# The Rust routes, checked over the proxy at $URL.
rust_routes() {
  local i
  for i in 1 2 3; do
    req 200 "$URL/api/health"
    has '"source":"rust"' '"status":"ok"'
    lacks '"source":"php"'
    req 200 "$URL/api/version?verbose=$i"
    has '"source":"rust"' '"version":"'
    lacks '"source":"php"'
  done
  req 200 --http2-prior-knowledge "$URL/api/health"
  [ "$HTTP_VERSION" = 2 ] || fail "expected HTTP/2, curl says HTTP/$HTTP_VERSION"
  has '"source":"rust"'
  lacks '"source":"php"'
  req 405 -X POST -d '{}' "$URL/api/health"
  lacks '"source":"php"'
}

# The routes still in PHP.
php_routes() {
  req 200 "$URL/api/users"
  has '"source":"php"' '"name":"ada"' '"name":"grace"'
  req 200 "$URL/api/users?limit=1"
  has '"source":"php"' '"name":"ada"'
  lacks '"name":"grace"'
  req 201 -H 'Content-Type: application/json' -d '{"name":"linus"}' "$URL/api/users"
  has '"source":"php"' '"user":{"id":3,"name":"linus"}'
  req 400 -H 'Content-Type: application/json' -d 'not json' "$URL/api/users"
  has '"source":"php"' '"error":'
  req 404 "$URL/legacy/page"
  has '"source":"php"' '"path":"/legacy/page"'
}

for backend in "$PHP_FPM_UNIX" "$PHP_FPM_TCP"; do
  name=migration-${backend%%:*}
  say "migration → php-fpm on $backend"
  start "$name" "$BIN/migration" --listen 127.0.0.1:0 --backend "$backend" --root "$ROOT" \
    --front-controller index.php
  pid=$LAST_PID
  wait_for_url "$name" "$pid"
  rust_routes
  php_routes
  say "$name: /api/health and /api/version from Rust; /api/users, 404 from PHP: ok"
  stop_gracefully "$name" "$pid"
done

# Each of the two runs sent 4 requests to /api/users and 1 to /legacy; PHP ran them all...
wait_php_runs /api/users 8
wait_php_runs /legacy/page 2
# ... and never for the routes the Rust router owns.
[ "$(php_runs /api/health)" = 0 ] || fail "PHP ran /api/health $(php_runs /api/health) times"
[ "$(php_runs /api/version)" = 0 ] || fail "PHP ran /api/version $(php_runs /api/version) times"
say "php-fpm's access log: /api/users ran in PHP, /api/health and /api/version never did"

say "control: the PHP app itself, reached directly (fcgi gateway --front-controller)"
start control "$FCGI" gateway --listen 127.0.0.1:0 --backend "$PHP_FPM_UNIX" --root "$ROOT" \
  --front-controller index.php
pid=$LAST_PID
wait_for_url control "$pid"
req 200 "$URL/api/health"
has '"source":"php"' '"status":"ok"'
req 200 "$URL/api/version"
has '"source":"php"' '"version":"'
wait_php_runs /api/health 1
say "control: PHP answers /api/health and /api/version with \"source\":\"php\" on its own"
stop_gracefully control "$pid"

say "all checks passed"
