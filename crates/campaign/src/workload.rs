//! The simulated browsers: each has one cookie jar and several tabs that send requests at the
//! same time, to a random app instance each, choosing random operations from a seeded
//! generator (the same seed draws the same operations), and recording every request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::app::KEYS;
use crate::history::{CookieOut, Kind, Op, Outcome};

/// The session cookie's name in the campaign's configuration.
pub const COOKIE: &str = "camp";

/// What the workload does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Simulated browsers (cookie jars).
    pub browsers: usize,
    /// Tabs per browser (concurrent requests of one session).
    pub tabs: usize,
    /// Users; browser `b` signs in as user `b % users`, so each user has several devices.
    pub users: usize,
    /// The base seed; tab `t` of browser `b` draws from its own generator seeded from it.
    pub seed: u64,
    /// The app instances' base URLs.
    pub urls: Vec<String>,
    /// The client's timeout (longer than any answer the library may give: a request that
    /// takes it is recorded as unanswered).
    pub client_timeout: Duration,
    /// A tab's pause between two requests, drawn from this range (milliseconds).
    pub think_ms: (u64, u64),
}

/// The shared state of a run: the history and the clock.
pub struct Recorder {
    started: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            started: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Microseconds since the recorder started.
    pub fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The microsecond timestamp of `at`.
    pub fn at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_micros()).unwrap_or(u64::MAX)
    }

    fn push(&self, mut op: Op) -> usize {
        let mut ops = self.ops.lock().unwrap_or_else(PoisonError::into_inner);
        op.id = ops.len();
        ops.push(op);
        ops.len() - 1
    }

    /// How many operations were recorded so far.
    pub fn count(&self) -> usize {
        self.ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The recorded history (taken out of the recorder).
    pub fn take(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// One browser: its cookie jar, shared by its tabs.
pub struct Browser {
    /// Its index.
    pub index: usize,
    /// The user it signs in as.
    pub user: String,
    jar: Mutex<Option<String>>,
}

impl Browser {
    /// The session id in the jar.
    pub fn cookie(&self) -> Option<String> {
        self.jar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Sends requests and records them.
pub struct Driver {
    client: reqwest::Client,
    /// The plan.
    pub plan: Plan,
    /// The history.
    pub recorder: Arc<Recorder>,
    /// The browsers.
    pub browsers: Vec<Arc<Browser>>,
}

/// The operation mix: (kind, weight).
const MIX: [(Kind, u32); 7] = [
    (Kind::Read, 30),
    (Kind::Put, 25),
    (Kind::Incr, 20),
    (Kind::Login, 6),
    (Kind::Logout, 3),
    (Kind::RevokeOthers, 2),
    (Kind::List, 8),
];

fn pick(rng: &mut StdRng) -> Kind {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut draw = rng.random_range(0..total);
    for (kind, weight) in MIX {
        if draw < weight {
            return kind;
        }
        draw -= weight;
    }
    Kind::Read
}

/// What the response's `Set-Cookie` headers did to the session cookie.
fn cookie_out(response: &reqwest::Response) -> CookieOut {
    let mut out = CookieOut::Keep;
    for header in response.headers().get_all(reqwest::header::SET_COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        let mut parts = text.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            continue;
        };
        if name != COOKIE {
            continue;
        }
        let removed = value.is_empty()
            || parts.any(|a| {
                a.eq_ignore_ascii_case("max-age=0") || a.starts_with("Expires=Thu, 01 Jan 1970")
            });
        out = if removed {
            CookieOut::Clear
        } else {
            CookieOut::Set(value.to_owned())
        };
    }
    out
}

impl Driver {
    /// A driver for `plan`.
    ///
    /// # Errors
    ///
    /// The HTTP client cannot be built.
    pub fn new(plan: Plan, recorder: Arc<Recorder>) -> Result<Driver, String> {
        let client = reqwest::Client::builder()
            .timeout(plan.client_timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let browsers = (0..plan.browsers)
            .map(|index| {
                Arc::new(Browser {
                    index,
                    user: format!("u{}", index % plan.users.max(1)),
                    jar: Mutex::new(None),
                })
            })
            .collect();
        Ok(Driver {
            client,
            plan,
            recorder,
            browsers,
        })
    }

    /// Sends one request of `kind` for tab `tab` of `browser` to instance `instance`, applies
    /// its `Set-Cookie` to the jar and records it; returns its index in the history.
    pub async fn request(
        &self,
        browser: &Browser,
        tab: usize,
        kind: Kind,
        instance: usize,
        rng: &mut StdRng,
    ) -> usize {
        let b = browser.index;
        let (query, arg, value) = match kind {
            Kind::Put => {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                let value = format!("b{b}t{tab}-{}", rng.random::<u64>());
                (
                    format!("key={key}&value={value}"),
                    Some(key.into()),
                    Some(value),
                )
            }
            Kind::Login => {
                let tag = format!("b{b}t{tab}.{}", rng.random::<u64>());
                let user = browser.user.clone();
                let query = format!("user={user}&tag={tag}&op={tag}");
                (query, Some(user), Some(tag))
            }
            Kind::Incr => {
                let token = format!("b{b}t{tab}~{}", rng.random::<u64>());
                let delay = rng.random_range(0..10);
                (format!("delay_ms={delay}&op={token}"), None, Some(token))
            }
            Kind::RevokeOthers | Kind::List => (String::new(), Some(browser.user.clone()), None),
            _ => (String::new(), None, None),
        };
        let path = match kind {
            Kind::Read => "all",
            Kind::Put => "put",
            Kind::Incr => "incr",
            Kind::Login => "login",
            Kind::Logout => "logout",
            Kind::RevokeOthers => "revoke-others",
            Kind::List => "list",
        };
        let url = format!("{}/{path}?{query}", self.plan.urls[instance]);
        let cookie_in = browser.cookie();
        let mut request = self.client.get(url);
        if let Some(id) = &cookie_in {
            request = request.header(reqwest::header::COOKIE, format!("{COOKIE}={id}"));
        }
        let start = self.recorder.now();
        let (outcome, cookie_out, body) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let cookie_out = cookie_out(&response);
                match response.text().await {
                    Ok(body) => (Outcome::Status(status), cookie_out, body),
                    Err(e) if e.is_timeout() => (Outcome::Timeout, cookie_out, String::new()),
                    Err(e) => (Outcome::Status(status), cookie_out, format!("body: {e}")),
                }
            }
            Err(e) if e.is_timeout() => (Outcome::Timeout, CookieOut::Keep, String::new()),
            Err(e) => {
                let why: String = format!("{e:?}").chars().take(200).collect();
                let outcome = if e.is_connect() {
                    Outcome::Unreachable(why)
                } else {
                    Outcome::Cut(why)
                };
                (outcome, CookieOut::Keep, String::new())
            }
        };
        let end = self.recorder.now();
        {
            let mut jar = browser.jar.lock().unwrap_or_else(PoisonError::into_inner);
            match &cookie_out {
                CookieOut::Set(id) => *jar = Some(id.clone()),
                CookieOut::Clear => *jar = None,
                // A session that ended under this cookie (`409`) is dropped from the jar, so
                // the browser starts over: what issue 24 asks the library to tell browsers.
                CookieOut::Keep if outcome == Outcome::Status(409) && *jar == cookie_in => {
                    *jar = None;
                }
                CookieOut::Keep => {}
            }
        }
        self.recorder.push(Op {
            id: 0,
            browser: b,
            tab,
            kind,
            instance,
            start,
            end,
            cookie_in,
            cookie_out,
            outcome,
            arg,
            value,
            body,
        })
    }

    /// Runs every tab of every browser until `stop` is set.
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let mut tasks = Vec::new();
        for browser in &self.browsers {
            for tab in 0..self.plan.tabs {
                let (driver, browser, stop) = (self.clone(), browser.clone(), stop.clone());
                let seed = self.plan.seed ^ ((browser.index as u64) << 32 | tab as u64);
                tasks.push(tokio::spawn(async move {
                    let mut rng = StdRng::seed_from_u64(seed);
                    while !stop.load(Ordering::Relaxed) {
                        let kind = pick(&mut rng);
                        let instance = rng.random_range(0..driver.plan.urls.len());
                        driver
                            .request(&browser, tab, kind, instance, &mut rng)
                            .await;
                        let (lo, hi) = driver.plan.think_ms;
                        let think = rng.random_range(lo..=hi.max(lo));
                        tokio::time::sleep(Duration::from_millis(think)).await;
                    }
                }));
            }
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}
