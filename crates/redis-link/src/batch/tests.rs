//! Interleavings of the queue, the writer and a failing connection that a test through Redis
//! can only hope to hit: here they are written on purpose, against a fake server on a local
//! socket (a std thread) whose reads the test controls.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::pin::pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use super::super::command::cmd;
use super::super::link::{Endpoint, Login, io_error};
use super::super::pool::lock;
use super::Batcher;

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

fn batcher(port: u16) -> Arc<Batcher> {
    Batcher::new(Endpoint {
        host: "127.0.0.1".to_owned(),
        port,
        login: Login {
            tls: None,
            username: None,
            password: None,
            db: 0,
        },
        timeout: Duration::from_secs(2),
    })
}

/// Reads from `conn` until `len` bytes came or it stays silent for half a second.
fn read_up_to(conn: &mut TcpStream, len: usize) -> Vec<u8> {
    conn.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a read timeout");
    let mut got = vec![0; len];
    let mut n = 0;
    while n < len {
        match conn.read(&mut got[n..]) {
            Ok(0) | Err(_) => break,
            Ok(read) => n += read,
        }
    }
    got.truncate(n);
    got
}

/// The rest of a call cut short by a full socket is never written at the head of a new
/// connection, when its own connection fails before the writer takes over: Redis would read
/// the middle of a command as a command, and hand every later reply to the wrong caller. The
/// call gets an error, and the new connection starts with the next call's command.
///
/// The interleaving is made on purpose: the server stops reading, so the inline write of a
/// 32 MiB `SET` stops half-way; the call is polled once (the writer, on this current-thread
/// runtime, has not run yet) and its connection is failed as its reader would on a reset.
#[tokio::test(flavor = "current_thread")]
async fn the_rest_of_a_call_cut_short_never_starts_a_new_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let port = listener.local_addr().expect("its address").port();
    let get = {
        let mut bytes = Vec::new();
        cmd("GET").arg("after").write_to(&mut bytes);
        bytes
    };
    let (first_bytes, got) = mpsc::channel();
    let server = std::thread::spawn({
        let len = get.len();
        move || {
            let (mut first, _) = listener.accept().expect("the first connection");
            assert_eq!(read_up_to(&mut first, PING.len()), PING);
            first.write_all(b"+PONG\r\n").expect("a reply");
            // Reads nothing more on the first connection: the next write fills the socket.
            let (mut second, _) = listener.accept().expect("a second connection");
            first_bytes
                .send(read_up_to(&mut second, len))
                .expect("the test waits");
            second.write_all(b"$-1\r\n").expect("a reply");
            drop(first);
        }
    });

    let calls = batcher(port);
    let pong = calls.send(&[cmd("PING")]).await.expect("a connection");
    assert_eq!(pong.len(), 1);

    let big = cmd("SET").arg("big").arg(vec![b'x'; 32 << 20]).take();
    let mut cut = pin!(calls.send(std::slice::from_ref(&big)));
    let pending = std::future::poll_fn(|cx| Poll::Ready(cut.as_mut().poll(cx).is_pending()));
    assert!(pending.await, "a 32 MiB write into a full socket completed");
    {
        let queue = lock(&calls.shared.queue);
        assert!(
            queue.partial.is_some_and(|p| p.len > 0),
            "the inline write was not cut short: the test did not make its interleaving"
        );
        let link = queue.link.as_ref().expect("the connection of the cut call");
        link.generation.fail(&io_error(
            std::io::ErrorKind::ConnectionReset,
            "reset by the test",
        ));
    }
    let cut_reply = tokio::time::timeout(Duration::from_secs(5), cut)
        .await
        .expect("the cut call is answered");
    assert!(
        cut_reply.is_err(),
        "the call cut short on a failed connection got {cut_reply:?}"
    );

    let after = tokio::time::timeout(
        Duration::from_secs(5),
        calls.send(&[cmd("GET").arg("after").take()]),
    )
    .await
    .expect("the next call is answered");
    let received = got
        .recv_timeout(Duration::from_secs(5))
        .expect("a second connection was opened");
    assert!(
        received == get,
        "the new connection began with {:?} instead of the next call's GET ({} bytes)",
        String::from_utf8_lossy(&received[..received.len().min(40)]),
        received.len()
    );
    assert!(
        after.is_ok_and(|replies| replies.len() == 1),
        "the next call failed"
    );
    server.join().expect("the fake server");
}
