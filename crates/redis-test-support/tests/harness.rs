//! Integration tests of the harness itself, against real redis-server
//! processes on loopback ports.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use redis::{Commands, Value};
use redis_test_support::{CountingProxy, RedisCluster, RedisServer};

/// Whether something accepts connections on 127.0.0.1:`port`.
fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A sync connection (with timeouts) to `url`.
fn connect(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).expect("valid url");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    con
}

/// A raw TCP connection, for byte-level control over what is sent.
fn raw(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads from `stream` until `expected` bytes have arrived.
fn read_exactly(stream: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0u8; expected.len()];
    stream.read_exact(&mut got).expect("reply");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

#[test]
fn server_starts_and_answers_ping() {
    let server = RedisServer::start();
    assert!(server.is_running());
    assert_ne!(server.port(), 6379);
    assert_eq!(
        server.url(),
        format!("redis://127.0.0.1:{}/", server.port())
    );
    assert_eq!(server.cmd(&["PING"]), Value::SimpleString("PONG".into()));

    let mut con = connect(&server.url());
    let () = con.set_ex("k", "v", 100).expect("SET");
    assert_eq!(server.cmd(&["GET", "k"]), Value::BulkString(b"v".to_vec()));
    assert!(matches!(server.cmd(&["TTL", "k"]), Value::Int(t) if (1..=100).contains(&t)));
    assert_eq!(server.cmd(&["DBSIZE"]), Value::Int(1));
    // Error replies are values, not panics.
    assert!(matches!(server.cmd(&["INCR", "k"]), Value::ServerError(_)));
    // Nothing is persisted.
    assert_eq!(
        server.cmd(&["CONFIG", "GET", "save"]),
        Value::Array(vec![
            Value::BulkString(b"save".to_vec()),
            Value::BulkString(Vec::new())
        ])
    );
}

#[test]
fn drop_kills_the_server() {
    let server = RedisServer::start();
    let port = server.port();
    let dir = server.dir().to_owned();
    assert!(accepts(port));
    drop(server);
    assert!(!accepts(port), "port {port} still answers after drop");
    assert!(!dir.exists(), "temporary directory not removed");
}

#[test]
fn drop_during_a_panic_kills_the_server() {
    let port = std::sync::Mutex::new(0);
    let result = std::panic::catch_unwind(|| {
        let server = RedisServer::start();
        *port.lock().expect("lock") = server.port();
        panic!("test failure while the server runs");
    });
    assert!(result.is_err());
    let port = *port.lock().expect("lock");
    assert!(port != 0 && !accepts(port));
}

#[test]
fn stop_and_restart_on_the_same_port() {
    let mut server = RedisServer::start();
    let port = server.port();
    server.cmd(&["SET", "k", "v"]);

    server.stop();
    assert!(!server.is_running());
    assert!(!accepts(port));
    server.stop(); // idempotent

    server.restart();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_eq!(server.cmd(&["PING"]), Value::SimpleString("PONG".into()));
    // Nothing was persisted across the restart.
    assert_eq!(server.cmd(&["EXISTS", "k"]), Value::Int(0));

    // Restarting a running server, and one that shut itself down.
    server.restart();
    assert_eq!(server.cmd(&["PING"]), Value::SimpleString("PONG".into()));
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .exec(&mut connect(&server.url()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.is_running() {
        assert!(
            Instant::now() < deadline,
            "SHUTDOWN did not stop the server"
        );
        thread::sleep(Duration::from_millis(10));
    }
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.cmd(&["DBSIZE"]), Value::Int(0));
}

#[test]
fn extra_args_are_passed_and_cmd_logs_in() {
    let server = RedisServer::start_with_args(&["--requirepass", "s3cret", "--maxmemory", "7mb"]);
    assert_eq!(server.cmd(&["PING"]), Value::SimpleString("PONG".into()));
    assert_eq!(
        server.cmd(&["CONFIG", "GET", "maxmemory"]),
        Value::Array(vec![
            Value::BulkString(b"maxmemory".to_vec()),
            Value::BulkString(b"7340032".to_vec())
        ])
    );
    let mut stream = raw(server.port());
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).expect("reply");
    assert_eq!(&reply, b"-NOAUTH");
}

#[test]
fn proxy_counts_round_trips_of_a_redis_client() {
    let server = RedisServer::start();
    let proxy = CountingProxy::start(server.port());
    assert_ne!(proxy.port(), server.port());
    let mut con = connect(&proxy.url());
    proxy.reset(); // forget the connection handshake, if any

    // One command.
    let () = con.set("a", "1").expect("SET");
    assert_eq!(proxy.round_trips(), 1);
    assert_eq!(proxy.commands(), vec![vec!["SET", "a", "1"]]);

    // A 3-command pipeline.
    proxy.reset();
    let (_, _, got): ((), i64, String) = redis::pipe()
        .set("b", "2")
        .incr("c", 5)
        .get("a")
        .query(&mut con)
        .expect("pipeline");
    assert_eq!(got, "1");
    assert_eq!(proxy.round_trips(), 1);
    assert_eq!(proxy.command_names(), vec!["SET", "INCRBY", "GET"]);

    // A MULTI/EXEC transaction sent as one pipeline.
    proxy.reset();
    let (_, _): ((), i64) = redis::pipe()
        .atomic()
        .set("d", "4")
        .expire("d", 60)
        .query(&mut con)
        .expect("transaction");
    assert_eq!(proxy.round_trips(), 1);
    assert_eq!(
        proxy.command_names(),
        vec!["MULTI", "SET", "EXPIRE", "EXEC"]
    );

    // Two sequential commands.
    proxy.reset();
    let _: Option<String> = con.get("a").expect("GET");
    let _: Option<String> = con.get("b").expect("GET");
    assert_eq!(proxy.round_trips(), 2);
    assert_eq!(proxy.command_names(), vec!["GET", "GET"]);
    proxy.wait_idle();
    assert_eq!(proxy.round_trips(), 2);

    // The data really went to the server.
    assert_eq!(server.cmd(&["GET", "b"]), Value::BulkString(b"2".to_vec()));

    // Round trips add up over connections.
    proxy.reset();
    let mut other = connect(&proxy.url());
    let () = other.set("e", "5").expect("SET");
    let () = con.set("f", "6").expect("SET");
    assert!(proxy.round_trips() >= 2);
}

#[test]
fn proxy_counts_a_pipeline_split_across_segments_once() {
    let server = RedisServer::start();
    let proxy = CountingProxy::start(server.port());
    let mut stream = raw(proxy.port());

    let pipeline: &[u8] =
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2\r\n42\r\n*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n";
    // Split in the middle of the second command, with a pause in between
    // (Redis replies to the first command meanwhile).
    let (first, second) = pipeline.split_at(40);
    stream.write_all(first).expect("write");
    thread::sleep(Duration::from_millis(100));
    stream.write_all(second).expect("write");
    read_exactly(&mut stream, b"+OK\r\n:43\r\n$2\r\n43\r\n");
    assert_eq!(proxy.round_trips(), 1);
    assert_eq!(
        proxy.commands(),
        vec![vec!["SET", "x", "42"], vec!["INCR", "x"], vec!["GET", "x"]]
    );

    // The next command after the reply is a new round trip; an inline
    // command is forwarded but not recorded.
    stream.write_all(b"PING\r\n").expect("write");
    read_exactly(&mut stream, b"+PONG\r\n");
    assert_eq!(proxy.round_trips(), 2);
    assert_eq!(proxy.command_names(), vec!["SET", "INCR", "GET"]);

    // The documented limit: a pause exactly between two commands, during
    // which Redis answers the first one, makes two round trips.
    proxy.reset();
    let boundary = pipeline
        .windows(4)
        .position(|w| w == b"*2\r\n")
        .expect("second command");
    let (first, second) = pipeline.split_at(boundary);
    stream.write_all(first).expect("write");
    read_exactly(&mut stream, b"+OK\r\n");
    stream.write_all(second).expect("write");
    read_exactly(&mut stream, b":43\r\n$2\r\n43\r\n");
    assert_eq!(proxy.round_trips(), 2);

    // Closing the server closes the proxied connection.
    drop(server);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn proxy_follows_a_server_restart_and_stops_on_drop() {
    let mut server = RedisServer::start();
    let proxy = CountingProxy::start(server.port());
    let proxy_port = proxy.port();
    let mut con = connect(&proxy.url());
    let () = con.set("k", "v").expect("SET");

    server.stop();
    assert!(con.get::<_, Option<String>>("k").is_err());
    server.restart();
    let mut con = connect(&proxy.url());
    let got: Option<String> = con.get("k").expect("GET");
    assert_eq!(got, None);

    drop(proxy);
    assert!(!accepts(proxy_port), "proxy still listening after drop");
    assert!(con.get::<_, Option<String>>("k").is_err());
}

#[test]
fn cluster_of_three_masters_serves_keys() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3);
    assert_eq!(cluster.nodes().len(), 3);
    assert_eq!(cluster.urls().len(), 3);
    for (node, url) in cluster.nodes().iter().zip(cluster.urls()) {
        assert!(node.starts_with("127.0.0.1:"));
        assert_eq!(url, format!("redis://{node}/"));
    }

    let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut con = client.get_connection().expect("cluster connection");
    for i in 0..30 {
        let () = con.set(format!("key-{i}"), i).expect("SET");
    }
    for i in 0..30 {
        let got: i64 = con.get(format!("key-{i}")).expect("GET");
        assert_eq!(got, i);
    }
    // The keys are spread over the masters.
    let mut total = 0;
    for server in cluster.servers() {
        match server.cmd(&["DBSIZE"]) {
            Value::Int(n) => {
                assert!(n > 0, "node {} holds no key", server.port());
                total += n;
            }
            other => panic!("DBSIZE returned {other:?}"),
        }
    }
    assert_eq!(total, 30);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cluster test took {:?}",
        started.elapsed()
    );

    let ports: Vec<u16> = cluster.servers().iter().map(RedisServer::port).collect();
    drop(cluster);
    for port in ports {
        assert!(
            !accepts(port),
            "cluster node {port} still answers after drop"
        );
    }
}

#[test]
#[should_panic(expected = "at least 3 masters")]
fn cluster_needs_three_masters() {
    let _ = RedisCluster::start(2);
}

/// The harness is used from `#[tokio::test]`s with the async redis client:
/// nothing here needs (or blocks inside) the runtime in a way that hangs,
/// and an async pipeline is one round trip too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_counts_async_client_round_trips() {
    let server = RedisServer::start();
    let proxy = CountingProxy::start(server.port());
    let client = redis::Client::open(proxy.url()).expect("valid url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    proxy.reset();

    let (_, _, _): ((), (), i64) = redis::pipe()
        .hset("h", "a", "1")
        .expire("h", 60)
        .ttl("h")
        .query_async(&mut con)
        .await
        .expect("pipeline");
    assert_eq!(proxy.round_trips(), 1);
    assert_eq!(proxy.command_names(), vec!["HSET", "EXPIRE", "TTL"]);

    let _: Option<String> = redis::cmd("HGET")
        .arg("h")
        .arg("a")
        .query_async(&mut con)
        .await
        .expect("HGET");
    assert_eq!(proxy.round_trips(), 2);
    assert!(matches!(server.cmd(&["TTL", "h"]), Value::Int(t) if t > 0));
}

#[test]
fn handles_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RedisServer>();
    assert_send_sync::<RedisCluster>();
    assert_send_sync::<CountingProxy>();
}
