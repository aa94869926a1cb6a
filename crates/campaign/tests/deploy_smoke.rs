//! The campaign's deployments against real Redis processes: each topology starts, every fault
//! kind it supports is injected (twice; once for Sentinel) and healed, and after `recover()` the keys written
//! before the faults are all still readable through the address the apps are given (the
//! proxy, the sentinels' master, the Cluster's proxies).
//!
//! Exists so that a broken fault (one that does not heal, or loses acknowledged data) shows up
//! here and not as a mysterious anomaly of the library in a long campaign.

use std::time::Duration;

use campaign::deploy::{Deployment, FaultKind, Topology};
use rand::SeedableRng;
use rand::rngs::StdRng;
use redis::Commands;

/// Keys written before the faults.
const KEYS: usize = 200;

/// The value of `default[key]` in a `[redis]` section.
fn setting(section: &str, key: &str) -> String {
    let prefix = format!("default[{key}] = ");
    section
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {section}"))
        .to_owned()
}

/// A connection to what the apps would talk to: the single server's proxy or the Sentinel
/// master (asked of the first sentinel).
fn connection(section: &str) -> redis::Connection {
    let url = match section.contains("sentinel_nodes") {
        false => format!("redis://127.0.0.1:{}/", setting(section, "port")),
        true => {
            let sentinels = setting(section, "sentinel_nodes");
            let first = sentinels.split(',').next().expect("a sentinel");
            let mut sentinel = redis::Client::open(format!("redis://{first}/"))
                .and_then(|c| c.get_connection())
                .expect("the sentinel answers");
            let (host, port): (String, u16) = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(setting(section, "sentinel_master"))
                .query(&mut sentinel)
                .expect("the sentinel names a master");
            format!("redis://{host}:{port}/")
        }
    };
    let client = redis::Client::open(url).expect("a valid url");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .expect("Redis answers");
    con.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("a read timeout");
    con
}

/// A Cluster connection through the proxies.
fn cluster_connection(section: &str) -> redis::cluster::ClusterConnection {
    let seeds: Vec<String> = setting(section, "cluster_nodes")
        .split(',')
        .map(|s| format!("redis://{s}/"))
        .collect();
    redis::cluster::ClusterClient::builder(seeds)
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .build()
        .and_then(|c| c.get_connection())
        .expect("the Cluster answers through its proxies")
}

/// Writes the keys, or reads them back and checks them.
fn keys(section: &str, write: bool) {
    let key = |i: usize| format!("camp:{{s{i}}}:k");
    let value = |i: usize| format!("v{i}");
    if section.contains("cluster_nodes") {
        let mut con = cluster_connection(section);
        for i in 0..KEYS {
            match write {
                true => con.set::<_, _, ()>(key(i), value(i)).expect("SET"),
                false => assert_eq!(
                    con.get::<_, Option<String>>(key(i)).expect("GET"),
                    Some(value(i)),
                    "{}",
                    key(i)
                ),
            }
        }
    } else {
        let mut con = connection(section);
        for i in 0..KEYS {
            match write {
                true => con.set::<_, _, ()>(key(i), value(i)).expect("SET"),
                false => assert_eq!(
                    con.get::<_, Option<String>>(key(i)).expect("GET"),
                    Some(value(i)),
                    "{}",
                    key(i)
                ),
            }
        }
        if write && section.contains("sentinel_nodes") {
            let acked: i64 = redis::cmd("WAIT")
                .arg(2)
                .arg(2000)
                .query(&mut con)
                .expect("WAIT");
            assert_eq!(acked, 2, "both replicas have the keys");
        }
    }
    if write {
        // The Cluster's replicas get the keys within milliseconds on loopback.
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Starts `topology`, writes keys, injects every kind `rounds` times, recovers and reads them
/// back.
fn run(topology: Topology, seed: u64, rounds: usize) {
    let mut deployment = Deployment::start(topology).expect("the topology starts");
    let section = deployment.redis_section();
    println!("{section}");
    assert!(section.contains("default[prefix] = camp:"));
    keys(&section, true);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut failures = Vec::new();
    for kind in deployment.kinds() {
        for _ in 0..rounds {
            let injected = deployment.inject(kind, &mut rng);
            let took = injected.ended - injected.started;
            println!(
                "{topology} {kind} {:.1} s: {} {:?}",
                took.as_secs_f64(),
                injected.detail,
                injected.error
            );
            if let Some(error) = injected.error {
                failures.push(format!("{kind}: {error}"));
            }
        }
    }
    let wrong = deployment.inject(FaultKind::Reshard, &mut rng);
    assert_eq!(
        wrong.error.is_some(),
        !deployment.kinds().contains(&FaultKind::Reshard)
    );
    deployment.recover().expect("recover");
    keys(&section, false);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn single_survives_every_fault() {
    run(Topology::Single, 1, 2);
}

#[test]
fn sentinel_survives_every_fault() {
    // Once per kind: a killed or forcibly demoted master is only reconfigured as a replica by
    // the sentinels about 8 s after it reports itself a master (4 x their 2 s publish period),
    // so each of those faults takes 8 to 17 s.
    run(Topology::Sentinel, 2, 1);
}

#[test]
fn cluster_survives_every_fault() {
    run(Topology::Cluster, 3, 2);
}

#[test]
fn names_parse_and_print() {
    for t in [Topology::Single, Topology::Sentinel, Topology::Cluster] {
        assert_eq!(t.to_string().parse::<Topology>(), Ok(t));
    }
    assert!("galaxy".parse::<Topology>().is_err());
    assert_eq!(FaultKind::Kill.to_string(), "kill-9");
    assert_eq!(FaultKind::Pause.to_string(), "client-pause");
}
