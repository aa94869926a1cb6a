//! Test harness: the basket app served in-process on a free port, over a private `redis-server`,
//! and a plain HTTP client without a cookie jar (each request says which cookie it sends).
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use basket::BasketView;
use redis_sessions::{Config, SessionManager};
use redis_test_support::RedisServer;

/// The app, its Redis and a client. The server task ends with the test's runtime; Redis is
/// killed on drop.
pub struct Shop {
    pub redis: RedisServer,
    pub base: String,
    client: reqwest::Client,
}

/// What a request sends as its body.
pub enum Body<'a> {
    /// No body.
    None,
    /// `value` as `application/json`.
    Json(serde_json::Value),
    /// These exact bytes, declared as `application/json`.
    RawJson(&'a str),
    /// These exact bytes as an HTML form (`application/x-www-form-urlencoded`).
    Form(&'a str),
}

/// One response, reduced to what the tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub set_cookie: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    /// The `dmsession=VALUE` pair of the Set-Cookie header, to send back as `Cookie`.
    pub fn cookie(&self) -> String {
        let header = self.set_cookie.as_deref().expect("a Set-Cookie header");
        header
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// The body as a basket.
    pub fn basket(&self) -> BasketView {
        assert_eq!(self.status, 200, "expected a basket, got {self:?}");
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not a basket ({e}): {self:?}"))
    }

    /// The `error` field of a JSON error body.
    pub fn error(&self) -> String {
        assert!(
            self.content_type.starts_with("application/json"),
            "error body is not JSON: {self:?}"
        );
        let value: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"));
        value
            .get("error")
            .and_then(serde_json::Value::as_str)
            .filter(|message| !message.is_empty())
            .unwrap_or_else(|| panic!("no error message: {self:?}"))
            .to_owned()
    }
}

impl Shop {
    /// A private Redis and the app over it. `lock_wait = 30` so that even 200 queued locked
    /// requests on a slow, shared 2-core machine never time out.
    pub async fn start() -> Shop {
        let redis = RedisServer::start();
        let port = redis.port();
        Shop::start_via(redis, port).await
    }

    /// The app over `redis`, reaching it through `port` (a counting proxy's, say).
    pub async fn start_via(redis: RedisServer, port: u16) -> Shop {
        Shop::start_app(redis, port, basket::app).await
    }

    /// The router `make` builds over the manager (the app plus routes of a test's own), over
    /// `redis` reached through `port`.
    pub async fn start_app(
        redis: RedisServer,
        port: u16,
        make: impl FnOnce(SessionManager) -> axum::Router + Send + 'static,
    ) -> Shop {
        let config = Config::from_ini_str(&format!(
            "[session]\ncookie_name = dmsession\nlock_wait = 30\n\
             [redis]\ndefault[host] = 127.0.0.1\ndefault[port] = {}\ndefault[prefix] = dm:\n",
            port
        ))
        .expect("test config");
        let manager = SessionManager::new(config).expect("session manager");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move {
            axum::serve(listener, make(manager)).await.expect("serve");
        });
        Shop {
            redis,
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
        }
    }

    /// `method path` with `cookie` (a `name=value` pair) when given.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Body<'_>,
    ) -> Reply {
        self.request_with(method, path, cookie, None, body).await
    }

    /// [`Shop::request`] with an `X-CSRF-Token` header when `csrf` is given.
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        csrf: Option<&str>,
        body: Body<'_>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::RawJson(text) => request
                .header("content-type", "application/json")
                .body(text.to_owned()),
            Body::Form(text) => request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(text.to_owned()),
        };
        let response = request.send().await.expect("HTTP request");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap_or_default().to_owned())
        };
        let set_cookie = header("set-cookie");
        let content_type = header("content-type").unwrap_or_default();
        Reply {
            status: response.status().as_u16(),
            set_cookie,
            content_type,
            body: response.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.request("GET", path, cookie, Body::None).await
    }

    /// `POST /api/basket/items` with `{"sku", "qty"}`.
    pub async fn add(&self, sku: &str, qty: u32, cookie: Option<&str>) -> Reply {
        let body = serde_json::json!({ "sku": sku, "qty": qty });
        self.request("POST", "/api/basket/items", cookie, Body::Json(body))
            .await
    }

    /// `GET /api/basket`.
    pub async fn basket(&self, cookie: Option<&str>) -> BasketView {
        self.get("/api/basket", cookie).await.basket()
    }

    /// A new session holding `qty` of `sku`; returns its cookie.
    pub async fn session_with(&self, sku: &str, qty: u32) -> String {
        let reply = self.add(sku, qty, None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.cookie()
    }

    /// Number of keys in Redis.
    pub fn dbsize(&self) -> i64 {
        match self.redis.cmd(&["DBSIZE"]) {
            redis::Value::Int(n) => n,
            other => panic!("DBSIZE answered {other:?}"),
        }
    }

    /// Number of live session records (hashes); destroyed sessions leave only a string tombstone.
    pub fn live_sessions(&self) -> usize {
        let redis::Value::Array(keys) = self.redis.cmd(&["KEYS", "*"]) else {
            panic!("KEYS did not answer an array");
        };
        keys.iter()
            .filter_map(|k| match k {
                redis::Value::BulkString(k) => String::from_utf8(k.clone()).ok(),
                _ => None,
            })
            .filter(|k| self.redis.cmd(&["TYPE", k]) == redis::Value::SimpleString("hash".into()))
            .count()
    }
}

/// `(sku, qty)` pairs of a basket, in order.
pub fn lines(basket: &BasketView) -> Vec<(String, u32)> {
    basket
        .items
        .iter()
        .map(|item| (item.sku.clone(), item.qty))
        .collect()
}

/// `(sku, qty)` pairs from literals, to compare with [`lines`].
pub fn owned(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
    pairs.iter().map(|&(s, q)| (s.to_owned(), q)).collect()
}
