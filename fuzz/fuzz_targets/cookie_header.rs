//! Fuzzes reading session ids from `Cookie` headers: arbitrary header bytes, many headers, many
//! cookies (segments can be repeated thousands of times), mixed with well-formed ids under our
//! name and others, quoted or not.
//!
//! Properties: never panics; at most `MAX_CANDIDATES` ids, without repeats, each one a canonical
//! id that appears literally in the headers; `session_id_from_headers` is the first of them; and
//! when the headers are built only of well-formed `name=value` pairs, the result is exactly the
//! distinct ids sent under our name, in order, capped at `MAX_CANDIDATES`.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use redis_sessions::SessionId;
use redis_sessions::cookie::{MAX_CANDIDATES, session_id_from_headers, session_ids_from_headers};

#[derive(Arbitrary, Debug)]
enum Segment<'a> {
    /// Raw bytes, possibly with `;`, `=`, quotes, obs-text or invalid header bytes.
    Raw(&'a [u8]),
    /// `name=<id>` with the id spelled canonically; under our name when `ours`.
    Id {
        ours: bool,
        bytes: [u8; 32],
        quoted: bool,
        spaces: u8,
    },
    /// The same segment many times (thousands of cookies in one header).
    Repeat(Box<Segment<'a>>, u16),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// 0: `dmsession`; otherwise a name of the fuzzer's choice.
    name: Option<&'a str>,
    /// Each header is a list of segments joined by `; `.
    headers: Vec<Vec<Segment<'a>>>,
}

/// Appends `segment`'s text; records the ids sent under our name; false if it is raw.
fn render(segment: &Segment<'_>, name: &str, out: &mut Vec<u8>, ours: &mut Vec<String>) -> bool {
    match segment {
        Segment::Raw(bytes) => {
            out.extend_from_slice(bytes);
            false
        }
        Segment::Id {
            ours: is_ours,
            bytes,
            quoted,
            spaces,
        } => {
            let id = URL_SAFE_NO_PAD.encode(bytes);
            let pad = " ".repeat(usize::from(spaces % 3));
            let cookie_name = if *is_ours { name } else { "other" };
            let value = if *quoted {
                format!("\"{id}\"")
            } else {
                id.clone()
            };
            out.extend_from_slice(format!("{pad}{cookie_name}{pad}={pad}{value}{pad}").as_bytes());
            if *is_ours || name == "other" {
                ours.push(id);
            }
            true
        }
        Segment::Repeat(inner, count) => {
            let mut clean = true;
            for i in 0..usize::from(count % 4096) {
                if i > 0 {
                    out.extend_from_slice(b"; ");
                }
                clean &= render(inner, name, out, ours);
                if out.len() > 64 << 10 {
                    break;
                }
            }
            clean
        }
    }
}

/// A cookie name the model can reason about: a non-empty token (no separators or spaces).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fuzz_target!(|input: Input<'_>| {
    let name = input.name.unwrap_or("dmsession");
    let mut headers = HeaderMap::new();
    let mut all_clean = true;
    let mut sent: Vec<String> = Vec::new();
    let mut texts: Vec<Vec<u8>> = Vec::new();
    for segments in &input.headers {
        let mut text = Vec::new();
        let mut ours = Vec::new();
        let mut clean = true;
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 {
                text.extend_from_slice(b"; ");
            }
            clean &= render(segment, name, &mut text, &mut ours);
        }
        match HeaderValue::from_bytes(&text) {
            Ok(value) => {
                headers.append(header::COOKIE, value);
                all_clean &= clean;
                sent.extend(ours);
                texts.push(text);
            }
            Err(_) => assert!(
                !clean || !is_token(name),
                "a header of well-formed pairs was refused"
            ),
        }
    }

    let ids = session_ids_from_headers(&headers, name);
    assert!(ids.len() <= MAX_CANDIDATES);
    assert_eq!(
        session_id_from_headers(&headers, name).as_ref(),
        ids.first()
    );
    for (i, id) in ids.iter().enumerate() {
        assert!(!ids[..i].contains(id), "repeated candidate");
        let text = id.expose();
        assert_eq!(SessionId::parse(&text).as_ref(), Some(id));
        assert!(
            texts
                .iter()
                .any(|t| t.windows(text.len()).any(|w| w == text.as_bytes())),
            "a candidate that is not in the headers"
        );
    }
    if all_clean && is_token(name) {
        let mut expected: Vec<String> = Vec::new();
        for id in sent {
            if !expected.contains(&id) && expected.len() < MAX_CANDIDATES {
                expected.push(id);
            }
        }
        let got: Vec<String> = ids.iter().map(SessionId::expose).collect();
        assert_eq!(got, expected, "well-formed pairs under our name, in order");
    }
});
