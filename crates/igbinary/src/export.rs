//! PHP's `var_export()` of a [`Value`], byte for byte as PHP 8.2 prints it: the tests compare
//! decoded blobs with PHP's own output, and a tool can show a session as a PHP developer
//! would see it.

use crate::value::{Array, Key, ObjectBody, Value};

/// `var_export($value, true)` as PHP 8.2 writes it (bytes: PHP strings need not be UTF-8).
///
/// PHP runs class code that this cannot: an object whose class has `__unserialize()` shows
/// its decoded array as properties here, where PHP shows the properties that method set; a
/// `Serializable` object shows no properties (as `Ds\Map` does in PHP).
pub fn php_export(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    export(value, 1, &mut out);
    out
}

fn spaces(out: &mut Vec<u8>, n: usize) {
    out.extend(std::iter::repeat_n(b' ', n));
}

/// A quoted string: `\` and `'` escaped, NUL bytes as `' . "\0" . '`.
fn quoted(bytes: &[u8], nul_escape: bool, out: &mut Vec<u8>) {
    out.push(b'\'');
    for &b in bytes {
        match b {
            b'\\' | b'\'' => out.extend([b'\\', b]),
            0 if nul_escape => out.extend_from_slice(b"' . \"\\0\" . '"),
            _ => out.push(b),
        }
    }
    out.push(b'\'');
}

fn export(value: &Value, level: usize, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"NULL"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i64::MIN) => out.extend_from_slice(b"-9223372036854775807-1"),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(php_float(*f).as_bytes()),
        Value::Str(s) => quoted(s, true, out),
        Value::Reference(r) => export(r, level, out),
        Value::Array(a) => {
            if level > 1 {
                out.push(b'\n');
                spaces(out, level - 1);
            }
            out.extend_from_slice(b"array (\n");
            for (key, value) in a.iter() {
                spaces(out, level + 1);
                match key {
                    Key::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
                    Key::Str(s) => quoted(s, true, out),
                }
                out.extend_from_slice(b" => ");
                export(value, level + 2, out);
                out.extend_from_slice(b",\n");
            }
            if level > 1 {
                spaces(out, level - 1);
            }
            out.push(b')');
        }
        Value::Object(o) => {
            if level > 1 {
                out.push(b'\n');
                spaces(out, level - 1);
            }
            let empty = Array::new();
            let properties = match &o.body {
                ObjectBody::EnumCase(case) => {
                    out.push(b'\\');
                    out.extend_from_slice(&o.class);
                    out.extend_from_slice(b"::");
                    out.extend_from_slice(case);
                    return;
                }
                ObjectBody::Properties(p) => p,
                ObjectBody::Serialized(_) => &empty,
            };
            let std_class = o.class == b"stdClass";
            if std_class {
                out.extend_from_slice(b"(object) array(\n");
            } else {
                out.push(b'\\');
                out.extend_from_slice(&o.class);
                out.extend_from_slice(b"::__set_state(array(\n");
            }
            for (key, value) in properties.iter() {
                spaces(out, level + 2);
                match key {
                    Key::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
                    Key::Str(s) => quoted(unmangle(s), false, out),
                }
                out.extend_from_slice(b" => ");
                export(value, level + 2, out);
                out.extend_from_slice(b",\n");
            }
            if level > 1 {
                spaces(out, level - 1);
            }
            out.extend_from_slice(if std_class { b")" } else { b"))" });
        }
    }
}

/// A property name without its `\0*\0` (protected) or `\0Class\0` (private) prefix.
fn unmangle(name: &[u8]) -> &[u8] {
    match name.strip_prefix(b"\0") {
        Some(rest) => match rest.iter().position(|&b| b == 0) {
            Some(end) => &rest[end + 1..],
            None => name,
        },
        None => name,
    }
}

/// A float as PHP prints it with `serialize_precision = -1`: the shortest digits that read
/// back to the same float, in plain notation when the decimal exponent is from -4 to 15 and
/// as `1.0E+25` otherwise, always with a fraction or exponent (`3.0`), and `INF`, `-INF`,
/// `NAN`.
pub(crate) fn php_float(f: f64) -> String {
    if f.is_nan() {
        return "NAN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "INF" } else { "-INF" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    // PHP's zend_gcvt: decpt is where the point goes after the first `decpt` digits.
    let decpt = exponent + 1;
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let body = if !(-3..=17).contains(&decpt) {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{first}.{rest}E{exp_sign}{}", exponent.abs())
    } else if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat(decpt.unsigned_abs() as usize))
    } else {
        let decpt = decpt as usize;
        if digits.len() <= decpt {
            format!("{digits}{}.0", "0".repeat(decpt - digits.len()))
        } else {
            format!("{}.{}", &digits[..decpt], &digits[decpt..])
        }
    };
    format!("{sign}{body}")
}
