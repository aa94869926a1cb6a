//! The app instances: `campaign serve` processes on free loopback ports, all on one
//! configuration file, that the campaign kills (`SIGKILL`) and restarts as one of its faults.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long an instance may take to listen after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One app instance.
struct Instance {
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

/// The running app instances; killed when dropped.
pub struct Apps {
    config: PathBuf,
    instances: Vec<Instance>,
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

impl Apps {
    /// Starts `count` instances of this executable's `serve` command on `config`, logging to
    /// `dir`, and waits until each listens.
    ///
    /// # Errors
    ///
    /// A process that cannot be started or does not listen within 20 s (its log is named).
    pub fn start(count: usize, config: &Path, dir: &Path) -> Result<Apps, String> {
        let mut apps = Apps {
            config: config.to_path_buf(),
            instances: Vec::new(),
        };
        for i in 0..count {
            let port = free_port()?;
            let log = dir.join(format!("app{i}.log"));
            // A previous run in the same folder (same seed) must not mix its holds in.
            let _ = std::fs::remove_file(log.with_extension("holds"));
            apps.instances.push(Instance {
                port,
                log,
                child: None,
            });
            apps.spawn(i)?;
        }
        Ok(apps)
    }

    /// The files the instances log the lock's holds to.
    pub fn holds_files(&self) -> Vec<PathBuf> {
        let file = |i: &Instance| i.log.with_extension("holds");
        self.instances.iter().map(file).collect()
    }

    /// The base URLs of the instances (`http://127.0.0.1:PORT`), by index.
    pub fn urls(&self) -> Vec<String> {
        let url = |i: &Instance| format!("http://127.0.0.1:{}", i.port);
        self.instances.iter().map(url).collect()
    }

    /// How many instances there are.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let instance = &mut self.instances[i];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&instance.log)
            .map_err(|e| format!("{}: {e}", instance.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", instance.port))
            .arg("--holds")
            .arg(instance.log.with_extension("holds"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start app {i}: {e}"))?;
        instance.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", instance.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "app {i} does not listen on {} after 20 s (log: {})",
                    instance.port,
                    instance.log.display()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.instances[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills instance `i` with `SIGKILL` (in-flight requests are cut), waits `down`, and starts
    /// it again on the same port.
    ///
    /// # Errors
    ///
    /// The new process does not listen within 20 s.
    pub fn restart(&mut self, i: usize, down: Duration) -> Result<(), String> {
        self.kill(i);
        thread::sleep(down);
        self.spawn(i)
    }
}

impl Drop for Apps {
    fn drop(&mut self) {
        for i in 0..self.instances.len() {
            self.kill(i);
        }
    }
}
