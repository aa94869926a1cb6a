//! The tower layer: a session slot per request, persisted after the handler.
//!
//! [`SessionLayer`] puts an empty slot into each request's extensions. A handler that never
//! starts the session costs nothing more (no cookie parsing, no store call). After the inner
//! service answers, a started session is persisted: by default before the response leaves, so a
//! failed write becomes an error response (`503` when the store is down, `409` when the session
//! ended meanwhile) instead of a false success; with `persist = after_response` the cookie is
//! decided first and the write runs in a spawned task after the response is handed back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::PersistMode;
use crate::manager::{SessionManager, Slot};

/// The response body of a [`SessionService`]: the inner service's body, or the short text of a
/// session error.
pub type SessionBody<B> = Either<B, Full<Bytes>>;

/// A tower layer that gives each request a session slot and persists it after the handler.
///
/// ```
/// use axum::{Router, routing::get};
/// use redis_sessions::{Config, Session, SessionManager, store::memory::MemoryStore};
///
/// let manager = SessionManager::with_store(Config::default(), MemoryStore::default());
/// let app: Router = Router::new()
///     .route("/", get(|session: Session| async move {
///         let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
///         session.put("visits", &visits)?;
///         Ok::<_, redis_sessions::SessionError>(visits.to_string())
///     }))
///     .layer(manager.layer());
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

/// The future of a [`SessionService`] call.
pub type ResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<SessionBody<B>>, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<SessionBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let slot = Slot::new(self.manager.clone());
        request.extensions_mut().insert(slot.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(finish(slot, response).await)
        })
    }
}

/// Persists the request's session (if started) and adds its cookie to the response.
async fn finish<B>(slot: Slot, mut response: Response<B>) -> Response<SessionBody<B>> {
    let Some(session) = slot.started() else {
        return response.map(Either::Left);
    };
    let manager = &slot.manager;
    match manager.config().persist_mode {
        PersistMode::BeforeResponse => match manager.persist(session).await {
            Ok(persisted) => persisted.apply_to(&mut response),
            Err(error) => {
                tracing::warn!(%error, status = %error.status(), "session not persisted");
                return error.to_response::<Full<Bytes>>().map(Either::Right);
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
    response.map(Either::Left)
}
