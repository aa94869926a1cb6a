//! Bytes that a peer has sent to one of the proxy's sockets and the proxy has not read yet,
//! read from the kernel's table of TCP sockets (`/proc/net/tcp`, Linux).
//!
//! Exists because a stall or a black hole holds bytes in the kernel, not in the proxy (the
//! proxy stops reading): a test that wants to know whether a stalled sender has filled the
//! connection (e.g. before it lifts the stall) can only see that there. Reading the table
//! needs no `unsafe` (an `ioctl(SIOCINQ)` would).

use std::fs;

/// The receive queue (`rx_queue`: bytes received and not yet read) of the established IPv4
/// socket 127.0.0.1:`local_port` ↔ 127.0.0.1:`remote_port`, or 0 if there is none (closed).
pub(super) fn unread(local_port: u16, remote_port: u16) -> u64 {
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    // Addresses are printed as the IPv4 address in host byte order and the port, in hex.
    let local = format!("0100007F:{local_port:04X}");
    let remote = format!("0100007F:{remote_port:04X}");
    table
        .lines()
        .skip(1)
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, l, r, _, queues, ..] = fields.as_slice() else {
                return None;
            };
            if *l != local || *r != remote {
                return None;
            }
            let (_, rx) = queues.split_once(':')?;
            u64::from_str_radix(rx, 16).ok()
        })
        .unwrap_or(0)
}
