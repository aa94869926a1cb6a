//! Helpers the integration tests share: the PHP-written vectors and running real PHP on blobs.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Names of the vectors in tests/vectors (NAME.hex), sorted.
pub fn vector_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(crate_dir().join("tests/vectors"))
        .expect("tests/vectors")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".hex").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

pub fn from_hex(hex: &str) -> Vec<u8> {
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn vector_blob(name: &str) -> Vec<u8> {
    let path = crate_dir().join(format!("tests/vectors/{name}.hex"));
    from_hex(&std::fs::read_to_string(path).expect("vector"))
}

/// PHP's var_export of the vector (with its final newline).
pub fn vector_export(name: &str) -> Vec<u8> {
    std::fs::read(crate_dir().join(format!("tests/vectors/{name}.export.txt"))).expect("export")
}

/// What PHP made of one blob: its var_export (with a final newline, as in the .export.txt
/// files) and its re-serialization.
#[derive(Debug)]
pub struct PhpDecoded {
    pub export: Vec<u8>,
    pub reserialized: Vec<u8>,
}

/// Fails loudly (not a skip) when php or its extensions are missing.
pub fn require_php() {
    let out = Command::new("php").arg("-m").output();
    let modules = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => panic!(
            "php is not installed: the interop tests need PHP with igbinary and ds \
             (apt-get install php-cli php-igbinary php-ds)"
        ),
    };
    for module in ["igbinary", "ds"] {
        assert!(
            modules.lines().any(|l| l.trim() == module),
            "php has no {module} extension: apt-get install php-cli php-igbinary php-ds"
        );
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Decodes each blob with real PHP (tests/php/decode.php), in one php process.
pub fn php_decode(blobs: &[Vec<u8>]) -> Vec<PhpDecoded> {
    require_php();
    let dir = std::env::temp_dir().join(format!(
        "igbinary-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let files: Vec<PathBuf> = blobs
        .iter()
        .enumerate()
        .map(|(i, blob)| {
            let path = dir.join(format!("{i}.hex"));
            std::fs::write(&path, to_hex(blob)).expect("write hex");
            path
        })
        .collect();
    let out = Command::new("php")
        .arg(crate_dir().join("tests/php/decode.php"))
        .args(&files)
        .output()
        .expect("run php");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = out.stdout;
    assert!(
        out.status.success(),
        "PHP failed to decode a blob:\n{}\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    files.iter().map(|f| section(&stdout, f)).collect()
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn section(stdout: &[u8], file: &Path) -> PhpDecoded {
    let header = format!("=== {}\n", file.display());
    let start = find(stdout, header.as_bytes(), 0).expect("section in PHP's output") + header.len();
    let marker = b"\nreserialized: ";
    let end = find(stdout, marker, start).expect("reserialized line");
    let hex_start = end + marker.len();
    let hex_end = find(stdout, b"\n", hex_start).unwrap_or(stdout.len());
    PhpDecoded {
        export: stdout[start..=end].to_vec(),
        reserialized: from_hex(std::str::from_utf8(&stdout[hex_start..hex_end]).expect("hex")),
    }
}
