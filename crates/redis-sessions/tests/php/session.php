<?php
// Plays the PHP application of tests/resonance.rs: reads and writes sessions the way the PHP
// framework does (key `<prefix>.session<id>`, the whole session as one igbinary blob, plain
// GET/SET with no TTL).
//
// Usage: php session.php PORT KEY write [N]  writes a session with objects, a shared array,
//                                          binary strings, floats and nulls (and 'n' => N,
//                                          default 5); prints its export
//        php session.php PORT KEY read    prints the session's export (the library's "\0meta"
//                                          entry left out) and then "meta: yes|no"
//        php session.php PORT KEY add K V  sets $session[K] = V (a string) like a PHP request
// Exit status 1 when the key is missing or does not decode.
declare(strict_types=1);

final class CartItem
{
    public function __construct(
        public string $sku,
        protected int $qty,
        private ?float $price,
    ) {}
}

[$port, $key, $mode] = [(int) $argv[1], $argv[2], $argv[3]];
$redis = new Redis();
$redis->connect('127.0.0.1', $port);

function load(Redis $redis, string $key): array
{
    $blob = $redis->get($key);
    if ($blob === false) { fwrite(STDERR, "no session under $key\n"); exit(1); }
    $session = igbinary_unserialize($blob);
    if (!is_array($session)) { fwrite(STDERR, "not a session array\n"); exit(1); }
    return $session;
}

switch ($mode) {
    case 'write':
        $shared = ['x' => 1, 'y' => [2, 3]];
        $item = new CartItem('SKU-1', 2, 9.5);
        $session = [
            'n' => (int) ($argv[4] ?? 5),
            'profile' => ['id' => 42, 'name' => "Zo\u{eb}", 'roles' => ['admin', 'editor']],
            'cart' => [$item, $item, new CartItem('SKU-2', 1, null)],
            'first' => $shared,
            'second' => $shared,
            'binary' => "\x00\x01\xff\xfe",
            'ratio' => -0.0,
            'nothing' => null,
            7 => 'an int key',
            'empty' => [],
        ];
        $redis->set($key, igbinary_serialize($session));
        echo var_export($session, true), "\n";
        break;
    case 'read':
        $session = load($redis, $key);
        $meta = array_key_exists("\0meta", $session);
        unset($session["\0meta"]);
        echo var_export($session, true), "\n";
        echo 'meta: ', $meta ? 'yes' : 'no', "\n";
        break;
    case 'add':
        $session = load($redis, $key);
        $session[$argv[4]] = $argv[5];
        $redis->set($key, igbinary_serialize($session));
        break;
    default:
        fwrite(STDERR, "unknown mode $mode\n");
        exit(2);
}
