//! Opening one connection to a Redis data server ourselves: TCP or TLS, then the login and the
//! database, all within the pool's timeout; and the probe that tells a dead flow from a stalled
//! Redis (see `batch/probe.rs`).
//!
//! Why not the `redis` crate's connections: on the hot path they cost more than the library's
//! own work (a driver task with its own channel, a response timer per command, the `combine`
//! reply parser: about 15,000 instructions per request under callgrind). The batching queue
//! (`batch/`) drives the connections opened here directly. The `redis` crate's argument
//! encoding (`ToRedisArgs`, through `command.rs`), error type and `Value` are still used, and its
//! clients still serve the sentinels, `sessionctl` and the tests.
//!
//! TLS is rustls with the same rules as the `redis` crate's `rediss://`: the server's
//! certificate is checked against `tls_ca` (or the system's roots without it) and its name
//! against the configured host, with a client certificate for mutual TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use redis::{RedisError, RedisResult, TlsCertificates, Value};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;

use crate::command::cmd;
use crate::resp::{Parsed, parse};

/// TCP keepalive on every connection: an idle flow sends a probe after `KEEPALIVE_IDLE`, so a
/// NAT or load balancer that drops idle flows (often after 60 s to 5 minutes) keeps ours, and
/// a flow that died while idle (a host that vanished) is closed by the kernel after
/// `KEEPALIVE_RETRIES` unanswered probes, `KEEPALIVE_INTERVAL` apart (within a minute), instead
/// of failing the next request. A flow that dies while replies are outstanding is found sooner,
/// by the probe of `batch/probe.rs`.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// Where and how to open connections to one data server.
pub(super) struct Endpoint {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) login: Login,
    /// Bounds opening a connection, TLS handshake and login included.
    pub(super) timeout: Duration,
}

/// What every data connection of a client does after connecting: TLS, login, database.
#[derive(Clone, Default)]
pub struct Login {
    /// TLS with this configuration (see [`Login::tls_config`]); `None`: plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The ACL user (`AUTH username password`); `None`: `AUTH password` alone.
    pub username: Option<String>,
    /// The password; `None`: no `AUTH`.
    pub password: Option<String>,
    /// The database (`SELECT` when not 0; a Cluster has only 0).
    pub db: i64,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("tls", &self.tls.is_some())
            .field("username", &self.username.is_some())
            .field("password", &self.password.is_some())
            .field("db", &self.db)
            .finish()
    }
}

/// A connection, or one of its halves: plain TCP or TLS over TCP.
pub(super) enum Transport<P, T> {
    Plain(P),
    Tls(T),
}

type Tls = Box<TlsStream<TcpStream>>;

/// A connection.
pub(super) type Stream = Transport<TcpStream, Tls>;

/// The half of a connection its reader task reads from. A plain connection splits into owned
/// halves, with no lock between them: `tokio::io::split` takes a mutex on every read and write
/// (about 50 instructions each, three times a request). A TLS connection shares its session
/// state between the halves, so it goes through `tokio::io::split`.
pub(super) type ReadHalf = Transport<OwnedReadHalf, tokio::io::ReadHalf<Tls>>;

/// The half of a connection the batcher writes to (see [`ReadHalf`]).
pub(super) type WriteHalf = Transport<OwnedWriteHalf, tokio::io::WriteHalf<Tls>>;

impl Stream {
    /// The connection's halves, for its reader and its writer.
    pub(super) fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Self::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                (Transport::Plain(read), Transport::Plain(write))
            }
            Self::Tls(tls) => {
                let (read, write) = tokio::io::split(tls);
                (Transport::Tls(read), Transport::Tls(write))
            }
        }
    }
}

/// An I/O error as the `redis` crate's error, so callers classify it as before
/// (`is_timeout`, `is_connection_refusal`, ...).
pub(super) fn io_error(kind: io::ErrorKind, message: impl Into<String>) -> RedisError {
    RedisError::from(io::Error::new(kind, message.into()))
}

impl Endpoint {
    /// Connects, shakes hands (TLS), logs in and selects the database, within the timeout.
    pub(super) async fn open(&self) -> RedisResult<Stream> {
        match tokio::time::timeout(self.timeout, self.open_unbounded()).await {
            Ok(opened) => opened,
            Err(_) => Err(io_error(
                io::ErrorKind::TimedOut,
                format!(
                    "could not connect to Redis at {}:{} within {:?}",
                    self.host, self.port, self.timeout
                ),
            )),
        }
    }

    async fn open_unbounded(&self) -> RedisResult<Stream> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        let keepalive = TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_RETRIES);
        SockRef::from(&tcp).set_tcp_keepalive(&keepalive)?;
        let mut stream = match &self.login.tls {
            None => Stream::Plain(tcp),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| {
                    io_error(
                        io::ErrorKind::InvalidInput,
                        format!("{:?} is not a TLS server name: {e}", self.host),
                    )
                })?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await?;
                Stream::Tls(Box::new(tls))
            }
        };
        self.login(&mut stream).await?;
        Ok(stream)
    }

    /// `AUTH [username] password` when the pool has a password, `SELECT db` when not 0.
    async fn login(&self, stream: &mut Stream) -> RedisResult<()> {
        let login = &self.login;
        let mut commands = Vec::new();
        let mut steps = Vec::with_capacity(2);
        if let Some(password) = &login.password {
            let mut auth = cmd("AUTH");
            if let Some(username) = &login.username {
                auth.arg(username);
            }
            auth.arg(password).write_to(&mut commands);
            steps.push(Step::Auth);
        }
        if login.db != 0 {
            cmd("SELECT").arg(login.db).write_to(&mut commands);
            steps.push(Step::Select);
        }
        if steps.is_empty() {
            return Ok(());
        }
        let replies = exchange(stream, &commands, steps.len(), "while logging in").await?;
        for (step, reply) in steps.into_iter().zip(replies) {
            if let Value::ServerError(e) = reply {
                return Err(self.refused(step, &e));
            }
        }
        Ok(())
    }

    /// Whether Redis runs a command on a new connection within the timeout: opens one, sends
    /// `EVAL "return 1" 0` and waits for `1`. A script, not `PING`: Redis holds it wherever it
    /// holds the library's own writes (`CLIENT PAUSE WRITE` too), so a Redis that holds them
    /// does not pass for a live one. Returns how long the command took once sent.
    pub(super) async fn probe(&self) -> RedisResult<Duration> {
        let answered = tokio::time::timeout(self.timeout, async {
            let mut stream = self.open_unbounded().await?;
            let mut probe = Vec::new();
            cmd("EVAL").arg("return 1").arg(0).write_to(&mut probe);
            let sent = tokio::time::Instant::now();
            let reply = exchange(&mut stream, &probe, 1, "while probed").await?;
            match reply.first() {
                Some(Value::Int(1)) => Ok(sent.elapsed()),
                other => Err(io_error(
                    io::ErrorKind::InvalidData,
                    format!("Redis answered a probe with {other:?}"),
                )),
            }
        });
        answered.await.unwrap_or_else(|_| {
            Err(io_error(
                io::ErrorKind::TimedOut,
                "Redis did not answer a probe on a new connection",
            ))
        })
    }

    /// The error of a refused login or database selection, naming the server, the user and
    /// the database.
    fn refused(&self, step: Step, e: &redis::ServerError) -> RedisError {
        let server = format!("{}:{}", self.host, self.port);
        match step {
            Step::Auth => {
                let user = self.login.username.as_deref().unwrap_or("default");
                RedisError::from((
                    redis::ErrorKind::AuthenticationFailed,
                    "Redis authentication failed",
                    format!("as user {user:?} at {server}: {e}"),
                ))
            }
            Step::Select => RedisError::from((
                redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
                "Redis refused to select the database",
                format!("database {} at {server}: {e}", self.login.db),
            )),
        }
    }
}

/// Writes `commands` (flushed: TLS may hold what it took until then) and reads `count` replies;
/// `doing` names the step in the error when Redis closes the connection.
async fn exchange(
    stream: &mut Stream,
    commands: &[u8],
    count: usize,
    doing: &str,
) -> RedisResult<Vec<Value>> {
    stream.write_all(commands).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(256);
    let mut replies = Vec::with_capacity(count);
    while replies.len() < count {
        match parse(&buf).map_err(|e| io_error(io::ErrorKind::InvalidData, e.0))? {
            Parsed::Reply(value, used) => {
                buf.drain(..used);
                replies.push(value);
            }
            Parsed::Incomplete(_) => {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(io_error(
                        io::ErrorKind::UnexpectedEof,
                        format!("Redis closed the connection {doing}"),
                    ));
                }
            }
        }
    }
    Ok(replies)
}

/// A command sent after connecting, for the error when Redis refuses it.
#[derive(Clone, Copy)]
enum Step {
    Auth,
    Select,
}

impl Login {
    /// The TLS client configuration for `certificates` (`tls_ca` or the system's roots, and the
    /// client certificate if any), built once per client.
    ///
    /// # Errors
    ///
    /// `InvalidData` naming the file (`tls_ca`, `tls_cert`, `tls_key`) that is not usable.
    pub fn tls_config(certificates: &TlsCertificates) -> io::Result<rustls::ClientConfig> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
        };
        let mut roots = rustls::RootCertStore::empty();
        match &certificates.root_cert {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| invalid("tls_ca is not a PEM certificate", &e))?;
                    roots
                        .add(cert)
                        .map_err(|e| invalid("tls_ca is not a usable CA certificate", &e))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                if native.certs.is_empty()
                    && let Some(e) = native.errors.first()
                {
                    return Err(invalid("cannot read the system's CA certificates", e));
                }
                for cert in native.certs {
                    // A system certificate rustls cannot use is skipped, as browsers do.
                    let _ = roots.add(cert);
                }
            }
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        match &certificates.client_tls {
            Some(client) => {
                let chain = CertificateDer::pem_slice_iter(&client.client_cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("tls_cert is not a PEM certificate chain", &e))?;
                let key = PrivateKeyDer::from_pem_slice(&client.client_key)
                    .map_err(|e| invalid("tls_key is not a PEM private key", &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid("tls_cert and tls_key do not form a client identity", &e))
            }
            None => Ok(builder.with_no_client_auth()),
        }
    }
}

impl<P: AsyncRead + Unpin, T: AsyncRead + Unpin> AsyncRead for Transport<P, T> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<P: AsyncWrite + Unpin, T: AsyncWrite + Unpin> AsyncWrite for Transport<P, T> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
