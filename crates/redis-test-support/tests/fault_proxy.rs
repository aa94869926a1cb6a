//! Tests of the fault proxy against real redis-server processes: each fault does what it
//! says, at the byte, and TLS passes through untouched. Raw `TcpStream`s are used where the
//! test must see exactly what arrives (each read, EOF, RST); `redis-cli` for TLS.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
fn delay_holds_each_chunk_for_its_duration() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    let delay = Duration::from_millis(300);
    for (direction, times) in [(Direction::ToClient, 1), (Direction::Both, 2)] {
        proxy.set(Fault::Delay {
            by: delay,
            direction,
        });
        let start = Instant::now();
        ping(&mut stream);
        let took = start.elapsed();
        assert!(
            took >= delay * times && took < delay * times + Duration::from_secs(2),
            "{direction:?}: PING took {took:?}, want about {:?}",
            delay * times
        );
    }
    proxy.heal();
    let start = Instant::now();
    ping(&mut stream);
    assert!(
        start.elapsed() < delay,
        "healed PING took {:?}",
        start.elapsed()
    );
}

#[test]
fn stall_to_server_holds_a_200kb_set_with_back_pressure_until_resumed() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    proxy.set(Fault::Stall(Direction::ToServer));
    let before = proxy.traffic();

    // A writer that counts what its socket took, 1 KB at a time.
    let command = resp(&[b"SET", b"big", &vec![b'x'; 200_000]]);
    let written = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut stream = stream.try_clone().expect("clone");
        let (written, done) = (Arc::clone(&written), Arc::clone(&done));
        thread::spawn(move || {
            for piece in command.chunks(1024) {
                stream.write_all(piece).expect("write the SET");
                written.fetch_add(piece.len(), Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    // The writer fills the buffers, then blocks: back-pressure.
    thread::sleep(Duration::from_millis(300));
    let stuck_at = written.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        written.load(Ordering::SeqCst),
        stuck_at,
        "the writer was not held"
    );
    assert!(
        !done.load(Ordering::SeqCst),
        "200 KB went into a stalled connection"
    );
    assert!(stuck_at < 200_000, "the writer wrote all {stuck_at} bytes");
    eprintln!("a stalled connection took {stuck_at} bytes before the writer blocked");
    assert_eq!(
        proxy.traffic(),
        before,
        "bytes were forwarded while stalled"
    );
    assert_eq!(get(&server, "big"), Value::Nil);

    proxy.set(Fault::Pass);
    writer.join().expect("writer");
    let mut reply = [0u8; 5];
    stream
        .read_exact(&mut reply)
        .expect("the SET's reply after the resume");
    assert_eq!(&reply, b"+OK\r\n");
    assert_eq!(server.cmd(&["STRLEN", "big"]), Value::Int(200_000));
}

#[test]
fn stall_to_client_holds_replies_while_commands_pass() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_millis(500));
    ping(&mut stream);
    proxy.set(Fault::Stall(Direction::ToClient));
    stream
        .write_all(&resp(&[b"INCR", b"n"]))
        .expect("write INCR");
    eventually("Redis ran the INCR", || {
        get(&server, "n") == Value::BulkString(b"1".to_vec())
    });
    assert_silent(&mut stream, "stalled reply");
    proxy.set(Fault::Pass);
    let mut reply = [0u8; 4];
    stream
        .read_exact(&mut reply)
        .expect("the reply after the resume");
    assert_eq!(&reply, b":1\r\n");
}

#[test]
fn black_hole_sends_nothing_no_fin_no_rst_and_new_connections_choose() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let second = Duration::from_secs(1);
    let mut held = connect(&proxy, second);
    ping(&mut held);
    proxy.set(Fault::BlackHole);
    held.write_all(PING).expect("write into the black hole");
    assert_silent(&mut held, "black-holed PING");
    assert_eq!(
        proxy.traffic_on(0),
        Traffic {
            to_server: 14,
            to_client: 7
        }
    );

    // A dropped flow: reconnecting works.
    let mut fresh = connect(&proxy, second);
    ping(&mut fresh);
    // A vanished host: new connections are black-holed too (their handshake still completes).
    proxy.set_for_new(Fault::BlackHole);
    let mut late = connect(&proxy, second);
    late.write_all(PING).expect("write into the black hole");
    assert_silent(&mut late, "black-holed new connection");
    ping(&mut fresh);
    assert_eq!(proxy.live_connections(), 3);

    // Healed, the held commands go through (TCP would retransmit them).
    proxy.heal();
    for stream in [&mut held, &mut late] {
        let mut reply = [0u8; PONG.len()];
        stream.read_exact(&mut reply).expect("the held PONG");
        assert_eq!(&reply, PONG);
    }
}

#[test]
fn reset_makes_both_sides_see_a_reset() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    assert_eq!(clients(&server), 2);
    proxy.set(Fault::Reset);
    let mut buf = [0u8; 16];
    let err = stream.read(&mut buf).expect_err("read after the reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(proxy.live_connections(), 0);
    eventually("Redis dropped the reset connection", || {
        clients(&server) == 1
    });

    // For new connections: reset as soon as accepted.
    proxy.set_for_new(Fault::Reset);
    let mut stream = connect(&proxy, Duration::from_secs(5));
    // (No write first: a write would consume the reset's error, and the read see EOF.)
    let err = stream
        .read(&mut buf)
        .expect_err("read on a reset new connection");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    proxy.heal();
    ping(&mut connect(&proxy, Duration::from_secs(5)));
}

#[test]
fn drip_delivers_a_reply_in_one_read_per_byte() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    let pause = Duration::from_millis(40);
    proxy.set(Fault::Drip {
        pause,
        direction: Direction::ToClient,
    });
    let start = Instant::now();
    stream.write_all(PING).expect("write PING");
    let mut reads = Vec::new();
    let mut got = Vec::new();
    while got.len() < PONG.len() {
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).expect("read a dripped byte");
        assert_ne!(n, 0, "EOF while dripping");
        reads.push(n);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, PONG);
    assert_eq!(reads, vec![1; 7], "bytes per read");
    assert!(
        start.elapsed() >= pause * 6,
        "7 bytes in {:?}",
        start.elapsed()
    );
}

#[test]
fn cut_after_n_bytes_lets_exactly_n_bytes_through_then_resets() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    // Three whole INCRs and 10 bytes of a fourth, in one write: Redis must run three.
    let incr = resp(&[b"INCR", b"n"]);
    let cut = 3 * incr.len() + 10;
    proxy.set(Fault::CutAfter {
        bytes: cut as u64,
        direction: Direction::ToServer,
    });
    stream.write_all(&incr.repeat(5)).expect("write the INCRs");
    let mut replies = Vec::new();
    let err = loop {
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => panic!("EOF instead of a reset"),
            Ok(n) => replies.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(proxy.traffic_on(0).to_server, (PING.len() + cut) as u64);
    // Redis read the three whole commands (their replies may not have made it back).
    eventually("the cut connection closed", || clients(&server) == 1);
    assert_eq!(get(&server, "n"), Value::BulkString(b"3".to_vec()));
    assert!(
        b":1\r\n:2\r\n:3\r\n".starts_with(&replies),
        "replies {replies:?}"
    );

    // The other direction: the client gets 3 bytes of its reply, then the reset.
    let mut stream = connect(&proxy, Duration::from_secs(5));
    proxy.set_on(
        1,
        Fault::CutAfter {
            bytes: 3,
            direction: Direction::ToClient,
        },
    );
    stream.write_all(PING).expect("write PING");
    let mut got = Vec::new();
    let err = loop {
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => panic!("EOF instead of a reset"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(got, b"+PO");
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
fn dropping_the_proxy_closes_its_connections() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    proxy.set(Fault::BlackHole);
    drop(proxy);
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("after the proxy's drop the client read {other:?}"),
    }
    eventually("Redis saw the connection close", || clients(&server) == 1);
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
