//! The tower layer: a session slot per request, persisted after the handler.
//!
//! [`SessionLayer`] puts an empty slot into each request's extensions. A handler that never
//! starts the session costs nothing more (no cookie parsing, no store call), and one that only
//! reads it nothing after the load. After the inner service answers, a started session with
//! something pending (changes, a rotation, a destroy, a lock, a TTL touch) is persisted: by
//! default before the response leaves, so a failed write becomes an error response (`503` when
//! the store is down, `409` when the session ended meanwhile) instead of a false success; with
//! `persist = after_response` the cookie is decided first and the write runs in a spawned task
//! after the response is handed back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::PersistMode;
use crate::error::SessionError;
use crate::manager::{Persisted, SessionManager, Slot};
use crate::session::Session;
use crate::store::StoreError;

/// A tower layer that gives each request a session slot and persists it after the handler.
///
/// ```
/// use axum::{Router, routing::get};
/// use redis_sessions::{Config, Session, SessionManager, store::memory::MemoryStore};
///
/// let manager = SessionManager::with_store(Config::default(), MemoryStore::default())?;
/// let app: Router = Router::new()
///     .route("/", get(|session: Session| async move {
///         let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
///         session.put("visits", &visits)?;
///         Ok::<_, redis_sessions::SessionError>(visits.to_string())
///     }))
///     .layer(manager.layer());
/// # Ok::<(), redis_sessions::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionLayer {
    manager: SessionManager,
}

impl SessionLayer {
    /// The layer for `manager` (also available as [`SessionManager::layer`]).
    #[must_use]
    pub fn new(manager: SessionManager) -> Self {
        Self { manager }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            manager: self.manager.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    manager: SessionManager,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let slot = Slot::new(self.manager.clone());
        request.extensions_mut().insert(slot.clone());
        ResponseFuture {
            state: State::Inner {
                future: self.inner.call(request),
                slot: Some(slot),
            },
        }
    }
}

type Persisting<B> = Pin<Box<dyn Future<Output = Response<B>> + Send>>;

pin_project! {
    /// The future of a [`SessionService`] call: the inner service's future, then, only when the
    /// handler started the session, the persist (so an untouched route allocates no future).
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner { #[pin] future: F, slot: Option<Slot> },
        Persisting { future: Persisting<B> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<&'static str> + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Inner { future, slot } => {
                    let response = ready!(future.poll(cx))?;
                    // Nothing to persist (no session, or one only read): no persist future.
                    let pending = |s: &Slot| s.started().is_some_and(|s| !s.is_settled());
                    let Some(slot) = slot.take().filter(pending) else {
                        return Poll::Ready(Ok(response));
                    };
                    let future = Box::pin(finish(slot, response));
                    self.as_mut()
                        .project()
                        .state
                        .set(State::Persisting { future });
                }
                StateProj::Persisting { future } => return future.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

/// Persists `session`. A session holding the lock persists in its own task: if the client goes
/// away and hyper drops this request's future, the save and the lock release still finish
/// (otherwise the lock would block the session until `lock_ttl`).
async fn persist_to_completion(
    manager: &SessionManager,
    session: &Session,
) -> Result<Persisted, SessionError> {
    if !session.is_locked() {
        return manager.persist_pending(session).await;
    }
    let (manager, session) = (manager.clone(), session.clone());
    tokio::spawn(async move { manager.persist_pending(&session).await })
        .await
        .unwrap_or_else(|join| {
            Err(SessionError::Store(StoreError::Backend(format!(
                "the persist task failed: {join}"
            ))))
        })
}

/// Persists the request's started session and adds its cookie to the response; a failed
/// persist replaces the response with the error's. An `async move` block rather than an `async
/// fn`, which would keep its arguments twice (rust-lang/rust#62958).
#[allow(clippy::manual_async_fn)] // on purpose, see above
fn finish<B: From<&'static str>>(
    slot: Slot,
    mut response: Response<B>,
) -> impl Future<Output = Response<B>> {
    async move {
        let Some(session) = slot.started() else {
            return response;
        };
        let manager = slot.manager();
        match manager.config().persist_mode {
            PersistMode::BeforeResponse => match persist_to_completion(manager, session).await {
                Ok(persisted) => persisted.apply_to(&mut response),
                Err(error) => {
                    tracing::warn!(%error, status = %error.status(), "session not persisted");
                    return error.to_response();
                }
            },
            PersistMode::AfterResponse => {
                let plan = manager.plan(session);
                manager.persisted(&plan).apply_to(&mut response);
                let (manager, session) = (manager.clone(), session.clone());
                tokio::spawn(async move {
                    if let Err(error) = manager.execute(&session, plan).await {
                        tracing::warn!(%error, "session not persisted after the response");
                    }
                });
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use crate::session::Session;
    use crate::store::Loaded;
    use crate::{Config, SessionManager};

    /// The persist future is boxed for every request that writes: mimalloc serves blocks up to
    /// 1 KiB from its fast path, and every layer of `async fn` around the plan once kept its
    /// arguments twice (rust-lang/rust#62958), which made this future 3,280 bytes. Nothing here
    /// does I/O.
    #[test]
    fn the_persist_future_of_every_writing_request_stays_small() {
        let manager = SessionManager::new(Config::default()).expect("a manager");
        let slot = crate::manager::Slot::new(manager.clone());
        let finish = super::finish(slot, http::Response::new(String::new()));
        let size = size_of_val(&finish);
        assert!(size < 1024, "finish: {size} bytes");
        let session = Session::new(manager.state_from(None, Loaded::Missing, None));
        let persist = manager.persist_pending(&session);
        let size = size_of_val(&persist);
        assert!(size < 1024, "persist: {size} bytes");
    }
}
