//! The CPU work redis-sessions does per request, apart from the network: ids, storage keys,
//! MessagePack encoding, data access, and cookies.
//!
//! `cargo bench -p micro` (from `bench/`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use redis_sessions::cookie::{session_id_from_headers, set_cookie};
use redis_sessions::{SessionConfig, SessionData, SessionId};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone)]
struct Line {
    sku: String,
    qty: u32,
}

#[derive(Serialize, Deserialize, Clone)]
struct Basket {
    lines: Vec<Line>,
}

fn basket() -> Basket {
    Basket {
        lines: ["tea-earl-grey", "mug-enamel", "biscuits-oat"]
            .iter()
            .enumerate()
            .map(|(i, sku)| Line {
                sku: (*sku).to_owned(),
                qty: i as u32 + 1,
            })
            .collect(),
    }
}

fn ids(c: &mut Criterion) {
    let id = SessionId::generate();
    let text = id.expose();
    c.bench_function("id/generate", |b| b.iter(SessionId::generate));
    c.bench_function("id/parse", |b| {
        b.iter(|| SessionId::parse(black_box(&text)))
    });
    c.bench_function("id/parse_malformed", |b| {
        b.iter(|| SessionId::parse(black_box("not-a-session-id")))
    });
    c.bench_function("id/storage_id", |b| b.iter(|| black_box(&id).storage_id()));
}

fn data(c: &mut Criterion) {
    let mut data = SessionData::default();
    let basket = basket();
    c.bench_function("data/put_integer", |b| {
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            data.put("n", black_box(&n))
        })
    });
    c.bench_function("data/get_integer", |b| {
        b.iter(|| data.get::<u64>(black_box("n")))
    });
    c.bench_function("data/put_basket_of_3", |b| {
        let mut basket = basket.clone();
        b.iter(|| {
            basket.lines[0].qty += 1;
            data.put("basket", black_box(&basket))
        })
    });
    c.bench_function("data/get_basket_of_3", |b| {
        b.iter(|| data.get::<Basket>(black_box("basket")))
    });
    c.bench_function("data/put_changed_integer", |b| {
        b.iter(|| {
            let _ = data.put("n", &1u64);
            data.put("n", black_box(&2u64))
        })
    });
}

fn cookies(c: &mut Criterion) {
    let config = SessionConfig::default();
    let id = SessionId::generate();
    let mut headers = http::HeaderMap::new();
    let cookie = format!("theme=dark; dmsession={}; lang=en", id.expose());
    headers.insert(http::header::COOKIE, cookie.parse().expect("header"));
    c.bench_function("cookie/set_cookie_header", |b| {
        b.iter(|| set_cookie(&config, black_box(&id)))
    });
    c.bench_function("cookie/read_id_from_request", |b| {
        b.iter(|| session_id_from_headers(black_box(&headers), "dmsession"))
    });
}

criterion_group!(benches, ids, data, cookies);
criterion_main!(benches);
