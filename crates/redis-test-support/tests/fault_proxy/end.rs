//! The faults and events that end a connection: a reset, a cut after N bytes, the server
//! going away (and coming back), the proxy's drop.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use redis::Value;
use redis_test_support::{Direction, Fault, FaultProxy, RedisServer};

use super::{PING, clients, connect, eventually, get, ping, resp};

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
    proxy.wait_for_connections(2);
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
fn a_server_that_goes_away_is_seen_by_the_client_and_a_restart_serves_again() {
    let mut server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    server.stop();
    // The server's close reaches the client as a close (EOF), not as silence.
    let mut buf = [0u8; 16];
    assert_eq!(
        stream
            .read(&mut buf)
            .expect("read after the server stopped"),
        0
    );
    // Half-closed until the client closes too (a proxy forwards each FIN on its own).
    assert_eq!(proxy.live_connections(), 1);
    drop(stream);
    eventually("the connection closed", || proxy.live_connections() == 0);
    // While it is down, a new connection is reset: nothing to forward it to.
    let err = connect(&proxy, Duration::from_secs(5))
        .read(&mut buf)
        .expect_err("read on a connection with no upstream");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    server.restart();
    ping(&mut connect(&proxy, Duration::from_secs(5)));
    assert_eq!(proxy.connections_opened(), 3);
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
