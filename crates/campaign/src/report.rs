//! The campaign's summary: operations by kind and outcome (with latencies), faults by kind,
//! anomalies by invariant with the shortest history that shows each; and the full history as
//! JSON lines, written when something was found.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::check::{Anomaly, INVARIANTS};
use crate::history::{Kind, Op, Outcome};
use crate::schedule::{Event, Fault};

/// The outcome columns of the operations table.
const COLUMNS: [&str; 7] = ["200", "401", "409", "503", "timeout", "unreachable", "cut"];

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e3
}

/// The operations table: one row per kind, a count per outcome, latency median / p99 / max
/// in milliseconds.
pub fn operations(ops: &[Op]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| operation | total | {} | other | p50 ms | p99 ms | max ms |",
        COLUMNS.join(" | ")
    );
    let _ = writeln!(
        out,
        "|---|---:|{}---:|---:|---:|---:|",
        "---:|".repeat(COLUMNS.len())
    );
    let mut rows: Vec<(String, Vec<&Op>)> = Kind::ALL
        .iter()
        .map(|&k| {
            (
                k.name().to_owned(),
                ops.iter().filter(|o| o.kind == k).collect(),
            )
        })
        .collect();
    rows.push(("all".into(), ops.iter().collect()));
    for (name, list) in rows {
        let mut counts = BTreeMap::new();
        for op in &list {
            *counts.entry(op.outcome.label()).or_insert(0usize) += 1;
        }
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|c| counts.remove(*c).unwrap_or(0).to_string())
            .collect();
        let other: usize = counts.values().sum();
        let mut took: Vec<u64> = list.iter().map(|o| o.end.saturating_sub(o.start)).collect();
        took.sort_unstable();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {other} | {:.1} | {:.1} | {:.1} |",
            list.len(),
            cells.join(" | "),
            percentile(&took, 0.5),
            percentile(&took, 0.99),
            percentile(&took, 1.0),
        );
    }
    out
}

/// The faults table: per kind, how many, how many could not be injected, total time held.
pub fn faults(events: &[Event]) -> String {
    let mut by_kind: BTreeMap<Fault, (usize, usize, f64)> = BTreeMap::new();
    for e in events {
        let row = by_kind.entry(e.fault).or_default();
        row.0 += 1;
        row.1 += usize::from(e.error.is_some());
        row.2 += e.span.1.duration_since(e.span.0).as_secs_f64();
    }
    let mut out =
        String::from("| fault | injected | failed to inject | seconds |\n|---|---:|---:|---:|\n");
    for (fault, (n, failed, secs)) in by_kind {
        let _ = writeln!(out, "| {fault} | {n} | {failed} | {secs:.1} |");
    }
    out
}

/// The anomalies: a count per invariant, then for each invariant with any, the shortest
/// history that shows one (its operations, in order of start).
pub fn anomalies(found: &[Anomaly], ops: &[Op]) -> String {
    let mut out = String::from("| invariant | anomalies |\n|---|---:|\n");
    for (n, name) in INVARIANTS.iter().enumerate().skip(1) {
        let count = found
            .iter()
            .filter(|a| usize::from(a.invariant) == n)
            .count();
        let _ = writeln!(out, "| {name} | {count} |");
    }
    for (n, name) in INVARIANTS.iter().enumerate().skip(1) {
        let shortest = found
            .iter()
            .filter(|a| usize::from(a.invariant) == n)
            .min_by_key(|a| a.ops.len());
        let Some(a) = shortest else { continue };
        // When the first anomaly of this invariant could be seen: its last operation's end.
        let seen = |a: &Anomaly| {
            a.ops
                .iter()
                .filter_map(|&i| ops.get(i))
                .map(|o| o.end)
                .max()
        };
        let first = found
            .iter()
            .filter(|a| usize::from(a.invariant) == n)
            .filter_map(seen)
            .min()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "\nInvariant {} (first seen {:.1} s into the run): {}",
            name,
            first as f64 / 1e6,
            a.what
        );
        let mut witness: Vec<&Op> = a.ops.iter().filter_map(|&i| ops.get(i)).collect();
        witness.sort_by_key(|o| o.start);
        witness.dedup_by_key(|o| o.id);
        for op in witness.iter().take(20) {
            let _ = writeln!(out, "  {}", op.line());
        }
        if witness.len() > 20 {
            let _ = writeln!(out, "  ... {} more operations", witness.len() - 20);
        }
    }
    out
}

/// Whether an operation failed for want of Redis or the app (for the recovery measure).
pub fn failed(op: &Op) -> bool {
    matches!(
        op.outcome,
        Outcome::Status(503) | Outcome::Timeout | Outcome::Unreachable(_) | Outcome::Cut(_)
    )
}

/// Writes the history to `path`, one JSON object per line.
///
/// # Errors
///
/// The file cannot be written.
pub fn write_history(path: &Path, ops: &[Op]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut file, op)?;
        file.write_all(b"\n")?;
    }
    file.flush()
}
