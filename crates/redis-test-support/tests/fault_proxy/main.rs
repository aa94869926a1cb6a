//! Tests of the fault proxy against real redis-server processes: each fault does what it
//! says, at the byte, and TLS passes through untouched. Raw `TcpStream`s are used where the
//! test must see exactly what arrives (each read, EOF, RST); `redis-cli` for TLS.
//!
//! The faults that hold bytes (delay, stall, black hole, drip) are in `hold.rs`, those that
//! end a connection (reset, cut, the server going away, the proxy's drop) in `end.rs`; the
//! pass-through, the per-connection API and TLS here.

mod end;
mod hold;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use redis::Value;
use redis_test_support::{Direction, Fault, FaultProxy, RedisServer, Traffic};

/// `PING` as RESP (14 bytes); Redis answers `+PONG\r\n` (7 bytes).
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const PONG: &[u8] = b"+PONG\r\n";

/// A command encoded as a RESP array of bulk strings.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw connection through the proxy, reads bounded by `timeout`.
fn connect(proxy: &FaultProxy, timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", proxy.port())).expect("connect to the proxy");
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    stream
}

/// Sends `PING` and expects `PONG` within the stream's read timeout.
fn ping(stream: &mut TcpStream) {
    stream.write_all(PING).expect("write PING");
    let mut reply = [0u8; PONG.len()];
    stream.read_exact(&mut reply).expect("read PONG");
    assert_eq!(&reply, PONG);
}

/// Asserts that nothing arrives on `stream` within its read timeout: no byte, no EOF, no
/// error other than the timeout.
fn assert_silent(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(0) => panic!("{what}: the socket saw EOF"),
        Ok(n) => panic!("{what}: {n} bytes arrived: {:?}", &buf[..n]),
        Err(e) => panic!("{what}: the socket saw {e} ({:?})", e.kind()),
    }
}

/// Polls `condition` for up to 5 s.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The number of clients connected to `server` (the harness's own `CLIENT LIST` included).
fn clients(server: &RedisServer) -> usize {
    match server.cmd(&["CLIENT", "LIST"]) {
        Value::BulkString(list) => list
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        Value::VerbatimString { text, .. } => text.lines().count(),
        other => panic!("CLIENT LIST answered {other:?}"),
    }
}

fn get(server: &RedisServer, key: &str) -> Value {
    server.cmd(&["GET", key])
}

#[test]
fn pass_forwards_both_ways_and_counts_every_byte() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    assert_eq!(
        (proxy.connections_opened(), proxy.live_connections()),
        (1, 1)
    );
    let ping_pong = Traffic {
        to_server: 14,
        to_client: 7,
    };
    assert_eq!(proxy.traffic(), ping_pong);
    assert_eq!(proxy.traffic_on(0), ping_pong);

    // The redis crate's client works through it too, with a large value.
    let client = redis::Client::open(proxy.url()).expect("client");
    let mut con = client
        .get_connection()
        .expect("connection through the proxy");
    let big = "v".repeat(300_000);
    let () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut con)
        .expect("SET");
    let back: String = redis::cmd("GET").arg("big").query(&mut con).expect("GET");
    assert_eq!(back.len(), big.len());
    assert_eq!(proxy.connections_opened(), 2);

    // A client's close is forwarded: Redis drops the connection, the proxy forgets it.
    drop(stream);
    drop(con);
    eventually("both connections closed", || proxy.live_connections() == 0);
    eventually("Redis sees only the harness", || clients(&server) == 1);
}

#[test]
fn set_on_faults_one_connection_and_the_others_pass() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut first = connect(&proxy, Duration::from_secs(1));
    let mut second = connect(&proxy, Duration::from_secs(1));
    proxy.wait_for_connections(2);
    proxy.set_on(1, Fault::BlackHole);
    ping(&mut first);
    second.write_all(PING).expect("write PING");
    assert_silent(&mut second, "the black-holed second connection");
    ping(&mut first);
    proxy.set_on(1, Fault::Pass);
    let mut reply = [0u8; PONG.len()];
    second.read_exact(&mut reply).expect("the held PONG");
    assert_eq!(&reply, PONG);
}

#[test]
#[should_panic(expected = "only 0 connection(s) were opened")]
fn set_on_a_connection_never_opened_panics() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    proxy.set_on(0, Fault::Reset);
}

#[test]
fn tls_passes_through_untouched_also_delayed() {
    let server = RedisServer::start_tls(false);
    let proxy = FaultProxy::start(server.tls_port());
    let ca = server
        .tls_certificates()
        .ca
        .to_str()
        .expect("utf-8 path")
        .to_owned();
    let port = proxy.port().to_string();
    let cli = || {
        let out = Command::new("timeout")
            .args([
                "10",
                "redis-cli",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--tls",
                "--cacert",
            ])
            .args([ca.as_str(), "PING"])
            .output()
            .expect("run redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(text.trim(), "PONG", "{text}");
    };
    cli();
    let handshake = proxy.traffic();
    assert!(
        handshake.to_client > 500,
        "no certificate went through: {handshake:?}"
    );

    let delay = Duration::from_millis(200);
    proxy.set_for_new(Fault::Delay {
        by: delay,
        direction: Direction::Both,
    });
    let start = Instant::now();
    cli();
    // At least the handshake's two round trips and the PING's one.
    assert!(
        start.elapsed() >= delay * 4,
        "TLS through a delay took {:?}",
        start.elapsed()
    );
    assert_eq!(proxy.connections_opened(), 2);
}
