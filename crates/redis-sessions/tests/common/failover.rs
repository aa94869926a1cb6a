//! A failover under traffic, the same for Sentinel and Cluster: requests to the counter run
//! while a master is killed; afterwards the run tells how long requests failed and checks that
//! every write answered 200 is still there.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Counter;

/// Longest a failover may leave the app failing requests.
pub const WINDOW_BOUND: Duration = Duration::from_secs(15);

/// One request: its key tag, when it was sent, and its status.
type Sent = (usize, Instant, u16);

/// What happened around one kill.
pub struct Failover {
    sent: Vec<Sent>,
    killed_at: Instant,
}

/// Sends `/incr?key=kN` (N = 0, 1, ...) one after the other with `cookie`; after 0.5 s runs
/// `kill` (a blocking call, on its own thread) and goes on until 20 requests sent after the kill
/// succeeded (or 40 s passed). Returns what `kill` returned and the run.
pub async fn incr_through_a_kill<T: Send + 'static>(
    app: &Counter,
    cookie: &str,
    kill: impl FnOnce() -> T + Send + 'static,
) -> (T, Failover) {
    let sent: Mutex<Vec<Sent>> = Mutex::new(Vec::new());
    let killed: Mutex<Option<Instant>> = Mutex::new(None);
    let traffic = async {
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut k = 0;
        loop {
            let started = Instant::now();
            let status = app
                .get(&format!("/incr?key=k{k}"), Some(cookie))
                .await
                .status;
            sent.lock().expect("list").push((k, started, status));
            k += 1;
            let kill = *killed.lock().expect("kill time");
            let successes_after = kill.map_or(0, |t| {
                let list = sent.lock().expect("list");
                list.iter()
                    .filter(|(_, at, status)| *at > t && *status == 200)
                    .count()
            });
            if successes_after >= 20 || Instant::now() > deadline {
                break;
            }
            if kill.is_some_and(|_| status != 200) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let value = tokio::task::spawn_blocking(kill).await.expect("kill");
        *killed.lock().expect("kill time") = Some(Instant::now());
        value
    };
    let ((), value) = tokio::join!(traffic, kill);
    let run = Failover {
        sent: sent.into_inner().expect("list"),
        killed_at: killed.into_inner().expect("kill time").expect("killed"),
    };
    (value, run)
}

impl Failover {
    /// Checks the statuses (only 200 or 503; traffic before the kill; once a request succeeded
    /// after the kill, failures end within [`WINDOW_BOUND`]) and returns the window: from the
    /// kill to the first request sent after it that succeeded.
    pub fn window(&self) -> Duration {
        let killed_at = self.killed_at;
        let after: Vec<(u128, u16)> = self
            .sent
            .iter()
            .filter(|(_, at, _)| *at > killed_at)
            .map(|(_, at, status)| ((*at - killed_at).as_millis(), *status))
            .collect();
        eprintln!("after the kill (ms, status): {after:?}");
        let before = self
            .sent
            .iter()
            .filter(|(_, at, _)| *at < killed_at)
            .count();
        assert!(before > 5, "traffic ran before the kill: {before} requests");
        for (k, _, status) in &self.sent {
            assert!(
                *status == 200 || *status == 503,
                "request k{k} answered {status}, neither a success nor a store error (503)"
            );
        }
        let first_success = self
            .sent
            .iter()
            .find(|(_, at, status)| *at > killed_at && *status == 200)
            .map(|(_, at, _)| *at)
            .expect("a request succeeded after the failover, without an app restart");
        let last_failure = self
            .sent
            .iter()
            .filter(|(_, _, status)| *status != 200)
            .map(|(_, at, _)| *at)
            .max();
        assert!(
            last_failure.is_none_or(|t| t < killed_at + WINDOW_BOUND),
            "requests still failed {WINDOW_BOUND:?} after the kill"
        );
        first_success - killed_at
    }

    /// Checks that every write answered 200, before or after the kill, reads back.
    pub async fn check_acknowledged_writes(&self, app: &Counter, cookie: &str) {
        for (k, _, status) in &self.sent {
            if *status == 200 {
                let reply = app.get(&format!("/read?key=k{k}"), Some(cookie)).await;
                assert_eq!(
                    (reply.status, reply.body.as_str()),
                    (200, "1"),
                    "k{k} was answered 200 but is missing after the failover"
                );
            }
        }
    }
}

/// The median of three or more windows, after checking each is below [`WINDOW_BOUND`].
pub fn median(mut windows: Vec<Duration>) -> Duration {
    windows.sort();
    let median = windows[windows.len() / 2];
    eprintln!("failover window: median {median:?} of {windows:?}");
    for window in &windows {
        assert!(
            *window < WINDOW_BOUND,
            "the app failed requests for {window:?} after the master died (bound \
             {WINDOW_BOUND:?})"
        );
    }
    median
}
