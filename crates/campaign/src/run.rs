//! One campaign from start to end: start Redis and the apps, run the browsers while the fault
//! schedule runs, heal, let traffic run calm for a while, take each browser's final state,
//! check the history and print the report. Exit status 0 (no anomaly), 1 (anomalies, history
//! written) or 2 (the campaign could not run).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::apps::Apps;
use crate::check::{Hold, Limits, check};
use crate::deploy::{Deployment, Topology};
use crate::history::Kind;
use crate::report;
use crate::schedule::{self, Fault};
use crate::workload::{COOKIE, Driver, Plan, Recorder};

/// The Redis `timeout` the deployments configure, and the session's `lock_wait`, in seconds.
const TIMEOUT_S: u64 = 1;
const LOCK_WAIT_S: u64 = 2;
/// The session's `lock_ttl`, seconds.
const LOCK_TTL_S: u64 = 5;

/// How long after the faults are healed every request must succeed again.
pub const RECOVERY: Duration = Duration::from_secs(5);

/// The campaign's options.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// single (AOF always), sentinel (master, 2 replicas, 3 sentinels) or cluster (3 masters,
    /// 2 replicas each).
    #[arg(long, default_value = "single")]
    pub topology: Topology,
    /// `all`, `none`, or a comma-separated list of: kill-9, client-pause, debug-sleep, proxy,
    /// failover, reshard, app-restart (those the topology supports).
    #[arg(long, default_value = "all")]
    pub faults: String,
    /// Seconds of traffic with faults (then the faults are healed and traffic runs calm).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seconds of calm traffic after the faults are healed.
    #[arg(long, default_value_t = 10)]
    pub calm: u64,
    /// The seed of the operations and of the fault schedule (random if not given; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulated browsers (cookie jars).
    #[arg(long, default_value_t = 8)]
    pub browsers: usize,
    /// Tabs per browser (concurrent requests of one session).
    #[arg(long, default_value_t = 3)]
    pub tabs: usize,
    /// Users (browser b signs in as user b % users).
    #[arg(long, default_value_t = 4)]
    pub users: usize,
    /// App instances.
    #[arg(long, default_value_t = 2)]
    pub apps: usize,
    /// A tab's shortest pause between requests, milliseconds.
    #[arg(long, default_value_t = 2)]
    pub think_min_ms: u64,
    /// A tab's longest pause between requests, milliseconds.
    #[arg(long, default_value_t = 30)]
    pub think_max_ms: u64,
    /// Where the run's files go (config, app logs, history), in a folder per run.
    #[arg(long, default_value = "target/campaign")]
    pub out: PathBuf,
    /// Write the history even without anomalies.
    #[arg(long)]
    pub keep_history: bool,
    /// Fail (exit status 2) when a fault kind was never injected successfully.
    #[arg(long)]
    pub require_every_fault: bool,
}

fn faults_of(spec: &str, deployment: &Deployment) -> Result<Vec<Fault>, String> {
    let mut all: Vec<Fault> = deployment.kinds().into_iter().map(Fault::Redis).collect();
    all.push(Fault::AppRestart);
    match spec {
        "all" => Ok(all),
        "none" => Ok(Vec::new()),
        list => list
            .split(',')
            .map(|name| {
                let name = name.trim();
                all.iter()
                    .copied()
                    .find(|f| f.to_string() == name)
                    .ok_or_else(|| {
                        let known: Vec<String> = all.iter().map(ToString::to_string).collect();
                        format!(
                            "--faults: {name:?} is not a fault of this topology (one of: {})",
                            known.join(", ")
                        )
                    })
            })
            .collect(),
    }
}

/// Runs the campaign; returns the exit status.
pub fn run(options: &Options) -> i32 {
    match campaign(options) {
        Ok(clean) => i32::from(!clean),
        Err(e) => {
            eprintln!("campaign: {e}");
            2
        }
    }
}

fn config_ini(deployment: &Deployment) -> String {
    format!(
        "[session]\ncookie_name = {COOKIE}\ncookie_lifespan = 3600\nredis_connection_pool = default\n\
         cookie_secure = false\nlock_wait = {LOCK_WAIT_S}\nlock_ttl = {LOCK_TTL_S}\n\n{}\n",
        deployment.redis_section()
    )
}

fn campaign(options: &Options) -> Result<bool, String> {
    let seed = options.seed.unwrap_or_else(rand::random);
    let topology = options.topology;
    eprintln!(
        "campaign: topology {topology}, seed {seed}, {} s of faults",
        options.duration
    );
    let dir = options.out.join(format!("{topology}-{seed}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let began = Instant::now();
    let mut deployment = Deployment::start(topology)?;
    let faults = faults_of(&options.faults, &deployment)?;
    let config = dir.join("config.ini");
    std::fs::write(&config, config_ini(&deployment)).map_err(|e| e.to_string())?;
    let mut apps = Apps::start(options.apps.max(1), &config, &dir)?;
    eprintln!(
        "campaign: Redis and {} apps up in {:.1} s",
        apps.len(),
        began.elapsed().as_secs_f64()
    );
    let plan = Plan {
        browsers: options.browsers.max(1),
        tabs: options.tabs.max(1),
        users: options.users.max(1),
        seed,
        urls: apps.urls(),
        client_timeout: Duration::from_secs(10),
        think_ms: (options.think_min_ms, options.think_max_ms),
    };
    let recorder = Arc::new(Recorder::new());
    let driver = Arc::new(Driver::new(plan, recorder.clone())?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = runtime.spawn(driver.clone().run(stop.clone()));
    let until = Instant::now() + Duration::from_secs(options.duration);
    let hot_keys = || {
        let ids = driver.browsers.iter().filter_map(|b| b.cookie());
        let ids = ids.filter_map(|id| redis_sessions::SessionId::parse(&id));
        ids.map(|id| format!("camp:{{{}}}", id.storage_id().as_str()))
            .collect()
    };
    let done = std::thread::scope(|s| {
        s.spawn(|| {
            schedule::run(
                &mut deployment,
                &mut apps,
                &faults,
                (seed, until),
                &hot_keys,
            )
        })
        .join()
        .map_err(|_| "the fault schedule panicked".to_owned())
    })?;
    if let Some(e) = &done.heal_error {
        eprintln!("campaign: healing failed: {e}");
    }
    runtime.block_on(async {
        tokio::time::sleep(Duration::from_secs(options.calm)).await;
        stop.store(true, Ordering::Relaxed);
        let _ = traffic.await;
    });
    let finals = runtime.block_on(final_state(&driver));
    let ops = recorder.take();
    let limits = Limits {
        unlocked_us: (TIMEOUT_S + 1) * 1_000_000,
        locked_us: (LOCK_WAIT_S + TIMEOUT_S + 1) * 1_000_000,
        healed_at: done.healed.map(|t| recorder.at(t)),
        recovery_us: u64::try_from(RECOVERY.as_micros()).unwrap_or(u64::MAX),
        lock_ttl_us: LOCK_TTL_S * 1_000_000,
        app_down: done
            .events
            .iter()
            .filter(|e| e.fault == Fault::AppRestart)
            .map(|e| (recorder.at(e.span.0), recorder.at(e.span.1)))
            .collect(),
    };
    let mut holds = Vec::new();
    for file in apps.holds_files() {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        holds.extend(Hold::parse(&text));
    }
    let (found, checked) = check(&ops, &finals, &holds, &limits);
    println!(
        "\n## Campaign: {topology}, seed {seed}, {} s of faults\n",
        options.duration
    );
    println!("{}", report::operations(&ops));
    println!("{}", report::faults(&done.events));
    if let Some(healed) = limits.healed_at {
        let last = ops
            .iter()
            .filter(|o| o.start > healed && report::failed(o))
            .map(|o| o.end - healed)
            .max();
        match last {
            Some(us) => println!(
                "Recovery: last failed request {:.2} s after the heal",
                us as f64 / 1e6
            ),
            None => println!("Recovery: no request failed after the heal"),
        }
    }
    println!(
        "Checked: {} reads against the acknowledged writes before them ({} values), {} \
         increments, {} lock holds, {} users' lists",
        checked.reads, checked.values, checked.increments, checked.holds, checked.lists
    );
    let missing: Vec<String> = faults
        .iter()
        .filter(|f| {
            !done
                .events
                .iter()
                .any(|e| e.fault == **f && e.error.is_none())
        })
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        println!("Faults never injected: {}", missing.join(", "));
    }
    println!("\n{}", report::anomalies(&found, &ops));
    println!(
        "RESULT topology={topology} seed={seed} operations={} faults={} anomalies={} seconds={:.0}",
        ops.len(),
        done.events.len(),
        found.len(),
        began.elapsed().as_secs_f64()
    );
    if !found.is_empty() || options.keep_history {
        let path = dir.join("history.jsonl");
        report::write_history(&path, &ops).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("History: {}", path.display());
    }
    if !found.is_empty() {
        println!(
            "Replay: cargo run --release -p campaign -- --topology {topology} --faults {} --duration {} --seed {seed}",
            options.faults, options.duration
        );
    }
    if options.require_every_fault && !missing.is_empty() {
        return Err(format!(
            "--require-every-fault: never injected: {} (a longer --duration?)",
            missing.join(", ")
        ));
    }
    Ok(found.is_empty())
}

/// After the calm: each browser reads its session, then each user with a signed-in browser
/// lists its sessions; returns those requests' indexes in the history.
async fn final_state(driver: &Driver) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(0);
    let mut finals = Vec::new();
    let mut signed_in = std::collections::BTreeMap::new();
    for browser in &driver.browsers {
        let id = driver.request(browser, 99, Kind::Read, 0, &mut rng).await;
        finals.push(id);
        if browser.cookie().is_some() {
            signed_in
                .entry(browser.user.clone())
                .or_insert(browser.clone());
        }
    }
    for browser in signed_in.values() {
        finals.push(driver.request(browser, 99, Kind::List, 0, &mut rng).await);
    }
    finals
}
