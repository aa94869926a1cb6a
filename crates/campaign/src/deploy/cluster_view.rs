//! One node's view of the Cluster (`CLUSTER NODES`), parsed: who is master of what, who
//! replicates whom, at which announced port.
//!
//! The harness's own parser is private to it; the fault injector needs a few more fields (the
//! announced port and bus port), so it reads the reply itself.

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub(super) struct NodeLine {
    /// The node ID.
    pub(super) id: String,
    /// The announced client port (the proxy's, once set up).
    pub(super) port: u16,
    /// The announced cluster bus port.
    pub(super) bus_port: u16,
    /// The flags: `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, ...
    pub(super) flags: Vec<String>,
    /// The master's ID, for a replica.
    pub(super) master_id: Option<String>,
    /// The slot ranges served, inclusive (open migrations skipped).
    pub(super) slots: Vec<(u16, u16)>,
}

impl NodeLine {
    /// Whether the node has `flag`.
    pub(super) fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// A master that is not failing.
    pub(super) fn is_healthy_master(&self) -> bool {
        self.has("master") && !self.has("fail") && !self.has("fail?")
    }
}

/// Parses a `CLUSTER NODES` reply, skipping lines it does not understand.
pub(super) fn parse(view: &str) -> Vec<NodeLine> {
    view.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            // `ip:port@cport[,hostname]`
            let (addr, bus) = fields[1].split_once('@')?;
            let port = addr.rsplit_once(':')?.1.parse().ok()?;
            let bus_port = bus.split(',').next()?.parse().ok()?;
            let slots = fields[8..]
                .iter()
                .filter(|r| !r.starts_with('['))
                .filter_map(|r| match r.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => r.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(NodeLine {
                id: fields[0].to_owned(),
                port,
                bus_port,
                flags: fields[2].split(',').map(str::to_owned).collect(),
                master_id: Some(fields[3]).filter(|m| *m != "-").map(str::to_owned),
                slots,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_masters_replicas_and_ports() {
        let view = "a1 127.0.0.1:4001@17001 myself,master - 0 0 1 connected 0-5460 [5461->-b2]\n\
                    b2 127.0.0.1:4002@17002,host slave a1 0 0 1 connected\n";
        let nodes = parse(view);
        assert_eq!(nodes.len(), 2);
        assert_eq!((nodes[0].port, nodes[0].bus_port), (4001, 17001));
        assert_eq!(nodes[0].slots, vec![(0, 5460)]);
        assert!(nodes[0].has("myself") && nodes[0].is_healthy_master());
        assert_eq!(nodes[1].master_id.as_deref(), Some("a1"));
        assert_eq!(nodes[1].bus_port, 17002);
    }
}
