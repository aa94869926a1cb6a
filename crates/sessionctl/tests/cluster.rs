//! `sessionctl` against a 3-master Redis Cluster: `count` and `purge` visit every master (found
//! with `CLUSTER SLOTS`), `show` reads from the master of the session's slot, and `destroy`
//! (the library's `end`, routed by the library's Cluster pool) holds against a late save.
//! One Cluster serves the whole story, to keep the suite's time down.

mod common;

use std::collections::HashSet;

use common::{Ctl, PREFIX, create, lock, runtime};
use redis_sessions::SessionId;
use redis_sessions::store::{SaveOutcome, SessionStore as _};
use redis_test_support::RedisCluster;
use serde_json::json;

#[test]
fn every_command_works_on_a_three_master_cluster() {
    let cluster = RedisCluster::start(3);
    let ctl = Ctl::cluster(&cluster);
    let rt = runtime();
    let store = ctl.store(&rt);
    let ids: Vec<SessionId> = (0..30)
        .map(|i| rt.block_on(create(&store, &[("n", json!(i))])))
        .collect();
    rt.block_on(lock(&store, &ids[1].storage_id()));

    // count: every master, each holding some of the 30.
    let (code, json) = ctl.json(&["count"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["sessions"], 30, "{json}");
    let masters = json["masters"].as_array().expect("masters");
    assert_eq!(masters.len(), 3, "{json}");
    let nodes: HashSet<String> = cluster.nodes().into_iter().collect();
    for master in masters {
        assert!(
            nodes.contains(master["node"].as_str().unwrap_or("")),
            "{json}"
        );
        assert!(master["sessions"].as_u64().unwrap_or(0) > 0, "{json}");
    }
    let text = ctl.run(&["count"]);
    assert!(
        text.stdout.contains("30 live sessions on 3 masters"),
        "{text:?}"
    );

    // show: any session, by cookie, from its own master.
    let mut shown_on = HashSet::new();
    for (i, id) in ids.iter().enumerate().take(10) {
        let (code, json) = ctl.json(&["show", &id.expose()]);
        assert_eq!(code, 0, "{json}");
        assert_eq!(json["fields"], json!({"n": i}), "{json}");
        shown_on.insert(json["node"].as_str().unwrap_or("").to_owned());
    }
    assert!(shown_on.len() > 1, "sessions of several masters were shown");

    // destroy, then a late plain save: Gone, and the count drops by one.
    let victim = ids[2].storage_id();
    let (code, json) = ctl.json(&["destroy", victim.as_str()]);
    assert_eq!(
        (code, json["status"].clone()),
        (0, json!("destroyed")),
        "{json}"
    );
    let late = common::late_save("n", &json!(99));
    let outcome = rt.block_on(store.save(&victim, &late)).expect("save");
    assert_eq!(outcome, SaveOutcome::Gone);
    assert_eq!(ctl.count(), 29);
    let (code, json) = ctl.json(&["show", victim.as_str()]);
    assert_eq!(
        (code, json["status"].clone()),
        (1, json!("ended")),
        "{json}"
    );
    let (code, _) = ctl.json(&["destroy", victim.as_str()]);
    assert_eq!(code, 1);

    // purge --dry-run: 29 sessions, 1 tombstone, 1 lock; nothing deleted.
    let (code, json) = ctl.json(&["purge", "--dry-run"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        (
            &json["keys"],
            &json["sessions"],
            &json["tombstones"],
            &json["locks"]
        ),
        (&json!(31), &json!(29), &json!(1), &json!(1)),
        "{json}"
    );
    assert_eq!(ctl.count(), 29, "a dry run deletes nothing");
    assert_eq!(ctl.run(&["purge"]).code, 5, "no terminal, no --yes");
    assert_eq!(ctl.count(), 29);

    // purge --yes: everything of the prefix, on every master.
    let text = ctl.run(&["purge", "--yes"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout
            .contains("deleted 31 keys (29 sessions, 1 tombstone, 1 lock) under prefix"),
        "{text:?}"
    );
    assert_eq!(ctl.count(), 0);
    for server in cluster.servers() {
        let keys = server.cmd(&["KEYS", &format!("{PREFIX}*")]);
        assert_eq!(keys, redis::Value::Array(Vec::new()), "{keys:?}");
    }
}
