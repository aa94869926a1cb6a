//! What a client sees during each fault of the campaign's deployments: a thread runs `SET` +
//! `GET` through the apps' address (1 s timeouts, reconnecting after an error) while faults
//! are injected, and each fault's line says how many operations ran during it, how many
//! failed, the slowest one, and when the first success after the fault came.
//!
//! A measurement, not a check (it asserts only that Redis answers again after each fault), so
//! it is `#[ignore]`d: `cargo test -p campaign --test deploy_traffic -- --ignored --nocapture`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use campaign::deploy::{Deployment, Topology};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// One operation: when it started, how long it took, whether it succeeded.
type Op = (Instant, Duration, bool);

/// The value of `default[key]` in a `[redis]` section.
fn setting(section: &str, key: &str) -> Option<String> {
    let prefix = format!("default[{key}] = ");
    section
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
}

/// A client of the deployment, as the app would reach it.
enum Client {
    /// A plain connection (single server's proxy, Sentinel master).
    Plain(redis::Connection),
    /// A Cluster connection through the proxies.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

/// Connects as the app would (the sentinels are asked for the master each time).
fn connect(section: &str) -> redis::RedisResult<Client> {
    let timeout = Duration::from_secs(1);
    if let Some(seeds) = setting(section, "cluster_nodes") {
        let seeds: Vec<String> = seeds.split(',').map(|s| format!("redis://{s}/")).collect();
        let client = redis::cluster::ClusterClient::builder(seeds)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(0)
            .build()?;
        return client
            .get_connection()
            .map(|c| Client::Cluster(Box::new(c)));
    }
    let url = match setting(section, "sentinel_nodes") {
        None => format!(
            "redis://127.0.0.1:{}/",
            setting(section, "port").unwrap_or_default()
        ),
        Some(sentinels) => {
            let mut port = None;
            for s in sentinels.split(',') {
                let reply = redis::Client::open(format!("redis://{s}/"))
                    .and_then(|c| c.get_connection_with_timeout(timeout))
                    .and_then(|mut c| {
                        redis::cmd("SENTINEL")
                            .arg("get-master-addr-by-name")
                            .arg("mymaster")
                            .query::<(String, u16)>(&mut c)
                    });
                if let Ok((_, p)) = reply {
                    port = Some(p);
                    break;
                }
            }
            format!("redis://127.0.0.1:{}/", port.unwrap_or(1))
        }
    };
    let con = redis::Client::open(url)?.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    Ok(Client::Plain(con))
}

/// One `SET` + `GET` of a key of the thread's own.
fn op(client: &mut Client, n: u64) -> redis::RedisResult<()> {
    let key = format!("camp:{{t{}}}:n", n % 64);
    let mut set = redis::cmd("SET");
    set.arg(&key).arg(n);
    let mut get = redis::cmd("GET");
    get.arg(&key);
    match client {
        Client::Plain(c) => {
            set.query::<()>(c)?;
            get.query::<String>(c).map(drop)
        }
        Client::Cluster(c) => {
            set.query::<()>(c)?;
            get.query::<String>(c).map(drop)
        }
    }
}

/// Runs operations until `stop`, recording each in `ops`.
fn traffic(section: String, stop: Arc<AtomicBool>, ops: Arc<Mutex<Vec<Op>>>) {
    let mut client = None;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let result = match client.as_mut() {
            Some(c) => op(c, n),
            None => connect(&section).and_then(|mut c| {
                let r = op(&mut c, n);
                client = Some(c);
                r
            }),
        };
        if result.is_err() {
            client = None;
        }
        let took = started.elapsed();
        ops.lock()
            .expect("ops")
            .push((started, took, result.is_ok()));
        n += 1;
        if result.is_err() {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Injects each kind `rounds` times (Proxy `proxy_rounds` times) under traffic and prints
/// what the client saw.
fn measure(topology: Topology, seed: u64, rounds: usize, proxy_rounds: usize) {
    let mut deployment = Deployment::start(topology).expect("starts");
    let section = deployment.redis_section();
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(Mutex::new(Vec::new()));
    let worker = {
        let (section, stop, ops) = (section.clone(), stop.clone(), ops.clone());
        thread::spawn(move || traffic(section, stop, ops))
    };
    thread::sleep(Duration::from_secs(1));
    let mut rng = StdRng::seed_from_u64(seed);
    for kind in deployment.kinds() {
        let times = match kind {
            campaign::deploy::FaultKind::Proxy => proxy_rounds,
            _ => rounds,
        };
        for _ in 0..times {
            let injected = deployment.inject(kind, &mut rng);
            thread::sleep(Duration::from_secs(2));
            let ops = ops.lock().expect("ops");
            let during: Vec<&Op> = ops
                .iter()
                .filter(|o| o.0 + o.1 >= injected.started && o.0 <= injected.ended)
                .collect();
            let failed = during.iter().filter(|o| !o.2).count();
            let slowest = during.iter().map(|o| o.1).max().unwrap_or_default();
            let back = ops
                .iter()
                .find(|o| o.0 >= injected.ended && o.2)
                .map(|o| format!("{:.2} s", (o.0 + o.1 - injected.ended).as_secs_f64()));
            println!(
                "{topology} {kind} [{:.1} s] {}{}\n    client: {} ops, {failed} failed, slowest \
                 {:.2} s, first success after heal {}",
                (injected.ended - injected.started).as_secs_f64(),
                injected.detail,
                injected
                    .error
                    .map(|e| format!(" ERROR {e}"))
                    .unwrap_or_default(),
                during.len(),
                slowest.as_secs_f64(),
                back.unwrap_or_else(|| "NONE".to_owned())
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("the traffic thread");
    deployment.recover().expect("recover");
}

#[test]
#[ignore = "a measurement, run by hand"]
fn single_under_traffic() {
    measure(Topology::Single, 11, 2, 14);
}

#[test]
#[ignore = "a measurement, run by hand"]
fn sentinel_under_traffic() {
    measure(Topology::Sentinel, 12, 2, 0);
}

#[test]
#[ignore = "a measurement, run by hand"]
fn cluster_under_traffic() {
    measure(Topology::Cluster, 13, 2, 10);
}
