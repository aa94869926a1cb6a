//! The faults that hold bytes: delay, stall (each direction), black hole (live and new
//! connections), drip; and that holding costs the proxy no CPU.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redis::Value;
use redis_test_support::{Direction, Fault, FaultProxy, RedisServer, Traffic};

use super::{PING, PONG, assert_silent, connect, eventually, get, ping, resp};

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
    assert_eq!(
        proxy.traffic(),
        before,
        "bytes were forwarded while stalled"
    );
    assert_eq!(get(&server, "big"), Value::Nil);
    // What the proxy's side holds unread, the rest is in the client's send buffer.
    let unread = proxy.unread_on(0);
    assert!(
        unread.to_server > 1000 && unread.to_server < stuck_at as u64,
        "unread {unread:?} of {stuck_at} written"
    );
    assert_eq!(unread.to_client, 0);
    eprintln!(
        "a stalled connection took {stuck_at} bytes before the writer blocked, {} of them in \
         the proxy's socket",
        unread.to_server
    );

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
    // The reply waits, unread, in the proxy's socket.
    assert_eq!(
        proxy.unread_on(0),
        Traffic {
            to_server: 0,
            to_client: 4
        }
    );
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
fn set_all_makes_a_vanished_host_for_live_and_new_connections_until_healed() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut live = connect(&proxy, Duration::from_millis(500));
    ping(&mut live);
    proxy.set_all(Fault::BlackHole);
    let mut new = connect(&proxy, Duration::from_millis(500));
    for stream in [&mut live, &mut new] {
        stream.write_all(PING).expect("write PING");
        assert_silent(stream, "a vanished host");
    }
    proxy.heal();
    for stream in [&mut live, &mut new] {
        let mut reply = [0u8; PONG.len()];
        stream.read_exact(&mut reply).expect("the held PONG");
        assert_eq!(&reply, PONG);
        ping(stream);
    }
    assert_eq!(proxy.connections_opened(), 2);
}

#[test]
fn drip_delivers_a_reply_in_one_read_per_byte() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    // Long enough that the client reads each byte before the next arrives, even on a busy
    // machine.
    let pause = Duration::from_millis(100);
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

/// CPU time (user + system, in clock ticks of 10 ms) used so far by this process's thread
/// named `name`.
fn thread_cpu_ticks(name: &str) -> u64 {
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = task.expect("task entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).expect("task stat");
        // Fields after the command name in parentheses: state is 3rd, utime 14th, stime 15th.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields[i - 3].parse::<u64>().expect("tick count");
        return ticks(14) + ticks(15);
    }
    panic!("no thread named {name}");
}

#[test]
fn held_bytes_cost_no_cpu_even_when_a_delay_has_expired_on_a_full_receiver() {
    let server = RedisServer::start();
    server.cmd(&["SET", "big", &"x".repeat(2_000_000)]);
    let proxy = FaultProxy::start(server.port());
    let mut stream = connect(&proxy, Duration::from_secs(5));
    ping(&mut stream);
    // The reply's delay expires while the client does not read: the proxy must wait for the
    // client's socket to take more, not poll in a loop.
    proxy.set(Fault::Delay {
        by: Duration::from_millis(10),
        direction: Direction::Both,
    });
    stream
        .write_all(&resp(&[b"GET", b"big"]))
        .expect("write GET");
    let name = format!("fault-px-{}", proxy.port());
    thread::sleep(Duration::from_millis(200));
    let before = thread_cpu_ticks(&name);
    thread::sleep(Duration::from_secs(1));
    let used = thread_cpu_ticks(&name) - before;
    assert!(
        used <= 10,
        "the proxy's thread used {used} ticks (of 10 ms) in 1 s while held"
    );
    // And the reply is whole once the client reads.
    let mut reply = vec![0u8; b"$2000000\r\n".len() + 2_000_000 + 2];
    stream.read_exact(&mut reply).expect("read the big reply");
    assert!(reply.starts_with(b"$2000000\r\nxxx") && reply.ends_with(b"x\r\n"));
}
