//! The slot map of a Redis Cluster: which master serves each hash slot, the connections to
//! each master, and the Redis reply that describes it (`CLUSTER SLOTS`).
//! Kept apart from the calls (`mod.rs`) because it is plain data and parsing, tested here
//! without a Cluster.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Value;

use crate::LinkError;
use crate::batch::Batcher;
use crate::connect::MasterTarget;

/// Number of hash slots of a Redis Cluster.
pub(super) const SLOTS: usize = 16384;
/// A slot no master serves.
const NO_OWNER: u16 = u16::MAX;

/// The hash slot of a key's hash tag (`CRC16(tag) mod 16384`, as Redis computes it).
pub fn slot_of(tag: &str) -> u16 {
    let crc = crc16::State::<crc16::XMODEM>::calculate(tag.as_bytes());
    // Lossless: the remainder is below 16384.
    (usize::from(crc) % SLOTS) as u16
}

/// A range of slots (first, last) and the address of its master.
pub(super) type Range = (u16, u16, (String, u16));

/// Which master serves each slot, and the connections to each master.
pub(super) struct SlotMap {
    owner: Vec<u16>,
    pub(super) nodes: Vec<Node>,
}

pub(super) struct Node {
    pub(super) addr: (String, u16),
    pub(super) conns: Vec<Arc<Batcher>>,
}

/// Where a call goes: the node of a slot, or the nodes in turn.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    Slot(u16),
    Any,
}

impl SlotMap {
    /// A map of `ranges` (first slot, last slot, master), reusing `old`'s connections.
    pub(super) fn build(
        old: Option<&SlotMap>,
        ranges: Vec<Range>,
        target: &MasterTarget,
        per_node: usize,
    ) -> SlotMap {
        let mut owner = vec![NO_OWNER; SLOTS];
        let mut nodes: Vec<Node> = Vec::new();
        let mut index: HashMap<(String, u16), u16> = HashMap::new();
        for (first, last, addr) in ranges {
            let i = *index.entry(addr.clone()).or_insert_with(|| {
                let conns = old
                    .and_then(|m| m.nodes.iter().find(|node| node.addr == addr))
                    .map(|node| node.conns.clone())
                    .unwrap_or_default();
                nodes.push(Node { addr, conns });
                // Lossless: a Cluster has far fewer than 65535 masters.
                (nodes.len() - 1) as u16
            });
            let last = usize::from(last).min(SLOTS - 1);
            if let Some(range) = owner.get_mut(usize::from(first)..=last) {
                range.fill(i);
            }
        }
        for node in &mut nodes {
            while node.conns.len() < per_node {
                node.conns.push(target.batcher(&node.addr.0, node.addr.1));
            }
        }
        SlotMap { owner, nodes }
    }

    /// The connection for a call to `target` and its node's address.
    pub(super) fn conn(
        &self,
        n: usize,
        target: Target,
        per_node: usize,
    ) -> Result<(Arc<Batcher>, (String, u16)), LinkError> {
        let (node, k) = match target {
            Target::Slot(slot) => match self.owner[usize::from(slot)] {
                NO_OWNER => {
                    return Err(unavailable(&format!("no master serves hash slot {slot}")));
                }
                i => (&self.nodes[usize::from(i)], n),
            },
            Target::Any if self.nodes.is_empty() => {
                return Err(unavailable("the slot map names no master"));
            }
            Target::Any => (
                &self.nodes[n % self.nodes.len()],
                n / self.nodes.len() % per_node,
            ),
        };
        let conn = Arc::clone(&node.conns[k % node.conns.len()]);
        Ok((conn, node.addr.clone()))
    }
}

/// The `(first, last, master)` ranges of a `CLUSTER SLOTS` reply from `asked` (an empty host
/// means `asked`'s own).
pub(super) fn parse_slots(reply: Value, asked: &(String, u16)) -> Result<Vec<Range>, String> {
    let Value::Array(ranges) = reply else {
        return Err(format!("unexpected CLUSTER SLOTS reply {reply:?}"));
    };
    let int = |v: &Value| match v {
        Value::Int(i) => u16::try_from(*i).ok(),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    ranges
        .iter()
        .map(|range| {
            let parsed = (|| {
                let Value::Array(items) = range else {
                    return None;
                };
                let Value::Array(master) = items.get(2)? else {
                    return None;
                };
                let host = text(master.first()?)?;
                let host = if host.is_empty() || host == "?" {
                    asked.0.clone()
                } else {
                    host
                };
                Some((
                    int(items.first()?)?,
                    int(items.get(1)?)?,
                    (host, int(master.get(1)?)?),
                ))
            })();
            parsed.ok_or_else(|| format!("unexpected CLUSTER SLOTS entry {range:?}"))
        })
        .collect()
}

/// How many slots `ranges` give a master (a Cluster that has formed gives all 16384).
pub(super) fn covered(ranges: &[Range]) -> usize {
    ranges
        .iter()
        .map(|&(first, last, _)| usize::from(last.saturating_sub(first)) + 1)
        .sum()
}

pub(super) fn unavailable(reason: &str) -> LinkError {
    LinkError::Unavailable(format!("Redis Cluster: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_ones_redis_computes() {
        // `CLUSTER KEYSLOT` of Redis 7.0 for these keys (no braces: the whole key is the tag).
        assert_eq!(slot_of("123456789"), 12739);
        assert_eq!(slot_of("foo"), 12182);
        assert_eq!(slot_of("user1000"), 3443);
        assert_eq!(slot_of(""), 0);
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn cluster_slots_gives_each_range_its_master() {
        let asked = ("10.0.0.9".to_owned(), 7000);
        let range = |first: i64, last: i64, host: &str, port: i64| {
            let master = Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]);
            let replica = Value::Array(vec![bulk("10.0.0.5"), Value::Int(7005), bulk("id2")]);
            Value::Array(vec![Value::Int(first), Value::Int(last), master, replica])
        };
        let reply = Value::Array(vec![
            range(0, 5460, "10.0.0.1", 7001),
            range(5461, 16383, "", 7002),
        ]);
        assert_eq!(
            parse_slots(reply, &asked).expect("a valid reply"),
            vec![
                (0, 5460, ("10.0.0.1".to_owned(), 7001)),
                (5461, 16383, ("10.0.0.9".to_owned(), 7002)),
            ]
        );
        assert!(parse_slots(Value::Int(3), &asked).is_err());
        assert!(parse_slots(Value::Array(vec![Value::Int(1)]), &asked).is_err());
    }
}
