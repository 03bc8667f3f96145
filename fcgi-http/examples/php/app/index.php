<?php
// The "legacy" PHP application of the migration demo: a front controller (every request
// runs this file; it routes on REQUEST_URI, as Laravel or Symfony do).
//
// It implements /api/health and /api/version too, answering with "source":"php". In front
// of it, fcgi-http/examples/migration.rs serves those two routes natively in Rust
// ("source":"rust"), so these PHP versions are dead code once the Rust routes are live:
// examples/scripts/migration.sh proves that "source":"php" never comes back for them.
declare(strict_types=1);

function reply(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode(['source' => 'php'] + $body, JSON_UNESCAPED_SLASHES), "\n";
}

// A tiny in-memory "database".
$users = [
    ['id' => 1, 'name' => 'ada'],
    ['id' => 2, 'name' => 'grace'],
];

$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';

switch (true) {
    case $path === '/api/health':
        reply(200, ['status' => 'ok']);
        break;

    case $path === '/api/version':
        reply(200, ['version' => PHP_VERSION]);
        break;

    case $path === '/api/users' && $method === 'GET':
        $limit = (int) ($_GET['limit'] ?? count($users));
        reply(200, ['users' => array_slice($users, 0, max(0, $limit))]);
        break;

    case $path === '/api/users' && $method === 'POST':
        $input = json_decode(file_get_contents('php://input') ?: '', true);
        if (!is_array($input) || !is_string($input['name'] ?? null)) {
            reply(400, ['error' => 'expected a JSON body like {"name":"..."}']);
            break;
        }
        reply(201, ['user' => ['id' => count($users) + 1, 'name' => $input['name']]]);
        break;

    default:
        reply(404, ['error' => 'no route', 'method' => $method, 'path' => $path]);
}
