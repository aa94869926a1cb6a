//! `sessionctl` on a pool behind Redis Sentinel: the tool asks the sentinels for the master, as
//! the library does, and counts, shows and destroys there.

mod common;

use common::{Ctl, create, runtime};
use redis_test_support::RedisSentinelSet;
use serde_json::json;

#[test]
fn commands_find_the_master_through_the_sentinels() {
    let set = RedisSentinelSet::start();
    let ctl = Ctl::with_pool(&format!(
        "default[sentinel_nodes] = {}\ndefault[sentinel_master] = {}",
        set.sentinel_nodes().join(","),
        set.master_name()
    ));
    let rt = runtime();
    let store = ctl.store(&rt);
    let id = rt.block_on(create(&store, &[("items", json!(7))]));

    let (code, json) = ctl.json(&["count"]);
    assert_eq!((code, json["sessions"].clone()), (0, json!(1)), "{json}");
    assert_eq!(
        json["masters"][0]["node"],
        format!("127.0.0.1:{}", set.master_port())
    );
    let (code, json) = ctl.json(&["show", &id.expose()]);
    assert_eq!(
        (code, json["fields"].clone()),
        (0, json!({"items": 7})),
        "{json}"
    );
    let (code, json) = ctl.json(&["destroy", &id.expose()]);
    assert_eq!(
        (code, json["status"].clone()),
        (0, json!("destroyed")),
        "{json}"
    );
    assert_eq!(ctl.count(), 0);

    // No sentinel answering: unreachable.
    let nobody = Ctl::with_pool(
        "default[sentinel_nodes] = 127.0.0.1:1\ndefault[sentinel_master] = mymaster",
    );
    let (code, json) = nobody.json(&["count"]);
    assert_eq!(
        (code, json["kind"].clone()),
        (3, json!("unreachable")),
        "{json}"
    );
}
