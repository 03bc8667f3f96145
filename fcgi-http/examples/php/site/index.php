<?php
// The gateway demo's page: describes the request PHP received, as one JSON object.
// (Served by `fcgi gateway`; checked by examples/scripts/php_gateway.sh.)
header('Content-Type: application/json');
header('X-Powered-By-Demo: php_gateway');

$server = static fn (string $name): string => (string) ($_SERVER[$name] ?? '');

echo json_encode([
    'source' => 'php',
    'method' => $server('REQUEST_METHOD'),
    'request_uri' => $server('REQUEST_URI'),
    'script_name' => $server('SCRIPT_NAME'),
    'script_filename' => $server('SCRIPT_FILENAME'),
    'path_info' => $server('PATH_INFO'),
    'query_string' => $server('QUERY_STRING'),
    'get' => $_GET,
    'content_type' => $server('CONTENT_TYPE'),
    'content_length' => $server('CONTENT_LENGTH'),
    'body' => file_get_contents('php://input'),
    'https' => $server('HTTPS'),
    'scheme' => $server('REQUEST_SCHEME'),
    'server_protocol' => $server('SERVER_PROTOCOL'),
    'server_port' => $server('SERVER_PORT'),
    'remote_addr' => $server('REMOTE_ADDR'),
    'host' => $server('HTTP_HOST'),
    'server_name' => $server('SERVER_NAME'),
], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
