//! Parsing of `CLUSTER NODES` replies and of string replies, shared by the cluster builder
//! (its health check) and the failover helpers (who serves which slot now).
//!
//! Kept apart so that both cluster files stay short and the parser has its own unit test.

/// One line of `CLUSTER NODES`: `<id> <ip:port@cport> <flags> <master> <ping-sent>
/// <pong-recv> <config-epoch> <link-state> <slot>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NodeEntry {
    /// The node ID.
    pub(super) id: String,
    /// The flags, e.g. `myself`, `master`, `slave`, `fail?`, `fail`.
    pub(super) flags: Vec<String>,
    /// The ID of the master of a replica (`None` for `-`).
    pub(super) master_id: Option<String>,
    /// The slot ranges served, inclusive (importing/migrating entries are skipped).
    pub(super) slots: Vec<(u16, u16)>,
}

impl NodeEntry {
    pub(super) fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Whether the node serves `slot`.
    pub(super) fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

/// Parses the reply of `CLUSTER NODES`, skipping lines it does not understand.
pub(super) fn parse_nodes(text: &str) -> Vec<NodeEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let slots = fields[8..]
                .iter()
                .filter_map(|range| match range.split_once('-') {
                    _ if range.starts_with('[') => None,
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => range.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(NodeEntry {
                id: fields[0].to_owned(),
                flags: fields[2].split(',').map(str::to_owned).collect(),
                master_id: Some(fields[3]).filter(|m| *m != "-").map(str::to_owned),
                slots,
            })
        })
        .collect()
}

/// The text of a bulk, simple or verbatim string reply (`Debug` of anything else).
pub(super) fn text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(text) | redis::Value::VerbatimString { text, .. } => {
            text.clone()
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_nodes;

    #[test]
    fn cluster_nodes_lines_are_parsed() {
        let view = "\
07c37dfeb2352 127.0.0.1:30004@31004,host slave e7d1eecce10fd 0 1426238317239 4 connected
67ed2db8d677e 127.0.0.1:30002@31002 master,fail - 1426238316232 0 2 disconnected
e7d1eecce10fd 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 5462 [5461->-67ed]
";
        let nodes = parse_nodes(view);
        assert_eq!(nodes.len(), 3);
        assert!(nodes[0].has_flag("slave"));
        assert_eq!(nodes[0].master_id.as_deref(), Some("e7d1eecce10fd"));
        assert!(nodes[0].slots.is_empty());
        assert!(nodes[1].has_flag("fail") && nodes[1].master_id.is_none());
        assert_eq!(nodes[2].slots, vec![(0, 5460), (5462, 5462)]);
        assert!(nodes[2].serves(5462) && !nodes[2].serves(5461));
    }
}
