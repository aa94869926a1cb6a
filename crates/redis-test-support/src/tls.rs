//! TLS and ACL users for a private server: test certificates made with the `openssl` CLI, a
//! server that also listens for TLS, and `ACL SETUSER` for limited users.
//!
//! Exists so that the library's TLS, mutual-TLS and ACL code paths run against a real
//! redis-server (Debian's 7.0 is built with TLS) instead of being trusted untested. The
//! certificates are made fresh in the server's temporary directory, valid for two days, for
//! `127.0.0.1` and `localhost`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{find_binary, log_tail, run_bounded};
use crate::server::{LOG_TAIL_LINES, RedisServer};

/// How long one `openssl` call may take.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(20);

/// PEM files of a test certificate authority and of a server and a client certificate it
/// signed, all in one directory (see [`TestCertificates::generate`]).
#[derive(Debug, Clone)]
pub struct TestCertificates {
    /// `ca.crt`: the CA certificate, to trust (a client's `tls_ca`, the server's
    /// `--tls-ca-cert-file`).
    pub ca: PathBuf,
    /// `server.crt`: for `127.0.0.1` and `localhost` (IP and DNS subject alternative names);
    /// also usable as a client certificate (Cluster nodes use it on the TLS cluster bus).
    pub server_cert: PathBuf,
    /// `server.key`: the server certificate's key (PKCS#8, P-256).
    pub server_key: PathBuf,
    /// `client.crt`: a client certificate for mutual TLS (`extendedKeyUsage = clientAuth`).
    pub client_cert: PathBuf,
    /// `client.key`: the client certificate's key.
    pub client_key: PathBuf,
}

impl TestCertificates {
    /// Makes a new CA and a server and a client certificate signed by it in `dir` with the
    /// `openssl` CLI (P-256 keys, valid for two days). Each call makes a different CA, so the
    /// files of another call are *not* trusted by a server using these: handy to test an
    /// untrusted server certificate. Panics (with openssl's output) if `openssl` is missing
    /// (`apt-get install -y openssl`) or fails.
    pub fn generate(dir: &Path) -> TestCertificates {
        let certs = TestCertificates {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        let ca_key = dir.join("ca.key");
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=redis-test CA"];
        ca.extend(key);
        ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(dir, &ca, &[("-keyout", &ca_key), ("-out", &certs.ca)]);
        let leaves = [
            // Cluster nodes also present it as clients on the TLS cluster bus.
            (
                "server",
                &certs.server_cert,
                &certs.server_key,
                "serverAuth, clientAuth",
            ),
            (
                "client",
                &certs.client_cert,
                &certs.client_key,
                "clientAuth",
            ),
        ];
        for (name, cert, leaf_key, usage) in leaves {
            let csr = dir.join(format!("{name}.csr"));
            let ext = dir.join(format!("{name}.ext"));
            let text = format!(
                "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n\
                 keyUsage = critical, digitalSignature\nextendedKeyUsage = {usage}\n"
            );
            std::fs::write(&ext, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", ext.display()));
            let mut req = vec!["req", "-subj"];
            let subject = format!("/CN=redis-test {name}");
            req.push(&subject);
            req.extend(key);
            openssl(dir, &req, &[("-keyout", leaf_key), ("-out", &csr)]);
            let sign = ["x509", "-req", "-days", "2", "-set_serial", "1"];
            let files = [
                ("-in", csr.as_path()),
                ("-CA", certs.ca.as_path()),
                ("-CAkey", ca_key.as_path()),
                ("-extfile", ext.as_path()),
                ("-out", cert.as_path()),
            ];
            openssl(dir, &sign, &files);
        }
        certs
    }

    /// The `redis-cli` arguments of a TLS connection trusting the CA (and presenting the
    /// client certificate, for servers that require one).
    pub(crate) fn cli_args(&self) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        vec![
            "--tls".into(),
            "--cacert".into(),
            path(&self.ca),
            "--cert".into(),
            path(&self.client_cert),
            "--key".into(),
            path(&self.client_key),
        ]
    }

    /// The `redis-server` arguments of a TLS listener on `tls_port` with these files, asking
    /// clients for a certificate signed by the CA when `client_auth` is true.
    pub(crate) fn server_args(&self, tls_port: u16, client_auth: bool) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        let auth = if client_auth { "yes" } else { "no" };
        [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &path(&self.server_cert),
            "--tls-key-file",
            &path(&self.server_key),
            "--tls-ca-cert-file",
            &path(&self.ca),
            "--tls-auth-clients",
            auth,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }
}

/// Runs `openssl args... flag path...` in `dir`, bounded in time; panics with its output.
fn openssl(dir: &Path, args: &[&str], files: &[(&str, &Path)]) {
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    for (flag, path) in files {
        all.push((*flag).to_owned());
        all.push(path.display().to_string());
    }
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        panic!("`openssl` was not found: the TLS tests need it, `apt-get install -y openssl`");
    }
    let binary = find_binary("openssl");
    let log = dir.join("openssl.log");
    match run_bounded(&binary, &all, dir, &log, OPENSSL_TIMEOUT) {
        Some(status) if status.success() => {}
        status => panic!(
            "openssl {all:?} failed ({status:?}):\n{}",
            log_tail(&log, LOG_TAIL_LINES)
        ),
    }
}

impl RedisServer {
    /// Starts a server that also listens for TLS on [`RedisServer::tls_port`], with
    /// certificates made in its directory ([`RedisServer::tls_certificates`]); with
    /// `client_auth` it requires a client certificate signed by the same CA (mutual TLS,
    /// `--tls-auth-clients yes`), else it asks for none (`--tls-auth-clients no`).
    ///
    /// The plain port ([`RedisServer::port`]) stays open on 127.0.0.1 for the harness itself
    /// (readiness, [`RedisServer::cmd`], [`RedisServer::add_acl_user`]); point the code under
    /// test at the TLS port.
    pub fn start_tls(client_auth: bool) -> RedisServer {
        RedisServer::launch_tls(&[], false, None, client_auth)
    }

    /// The TLS port of a server made by [`RedisServer::start_tls`]. Panics for a server
    /// without TLS.
    pub fn tls_port(&self) -> u16 {
        self.tls().map_or_else(
            || panic!("redis-server on port {} has no TLS port", self.port()),
            |(port, _)| port,
        )
    }

    /// The certificates of a server made by [`RedisServer::start_tls`]: `ca` to trust,
    /// `client_cert`/`client_key` for mutual TLS. Panics for a server without TLS.
    pub fn tls_certificates(&self) -> &TestCertificates {
        self.tls().map_or_else(
            || {
                panic!(
                    "redis-server on port {} has no TLS certificates",
                    self.port()
                )
            },
            |(_, certs)| certs,
        )
    }

    /// Creates (or resets) the ACL user `name` with `password` and the ACL `rules`, e.g.
    /// `&["~dm:*", "resetchannels", "-@all", "+hgetall"]`, i.e.
    /// `ACL SETUSER name reset on >password rules...`. The user starts from nothing (`reset`), so it can run only what
    /// the rules allow. Panics if Redis refuses the rules.
    pub fn add_acl_user(&self, name: &str, password: &str, rules: &[&str]) {
        let secret = format!(">{password}");
        let mut args = vec!["ACL", "SETUSER", name, "reset", "on", &secret];
        args.extend(rules);
        let reply = self.cmd(&args);
        assert_eq!(
            reply,
            redis::Value::Okay,
            "ACL SETUSER {name} {rules:?} was refused"
        );
    }
}
