<?php
// For examples/scripts/php_gateway.sh, which shows that Ctrl-C lets a request in flight
// finish: this script creates "started" in the directory named by the pool's
// env[DEMO_MARKERS], then waits (at most 10 s) for "release" to appear there before it
// answers. Without that variable it does nothing but answer 404.
$dir = getenv('DEMO_MARKERS');
if (!is_string($dir) || $dir === '' || !is_dir($dir)) {
    http_response_code(404);
    exit;
}
touch("$dir/started");
for ($i = 0; $i < 1000 && !is_file("$dir/release"); $i++) {
    usleep(10000);
    clearstatcache();
}
header('Content-Type: text/plain');
echo is_file("$dir/release") ? "released\n" : "timeout\n";
