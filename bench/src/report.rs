//! Turns several criterion runs (saved as baselines `run1`, `run2`, ...) and the Node peer's
//! JSON outputs into the markdown table printed by `scripts/run-crypto.sh` and pasted into
//! `bench/README.md`.
//!
//! Method, as in perf-security §0: each benchmark runs in several separate processes; a
//! process's figure is criterion's median time per iteration (or, for Node, the median of its
//! rounds); the figure reported is the median of those per-process medians. Ratios are taken
//! between the reported figures.
//!
//! Reading criterion's `estimates.json` by hand (a few lines of serde_json) avoids pulling in
//! criterion's own plotting/report machinery, which is off in this workspace.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A result file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A result file is not the JSON we expect.
    #[error("{path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: &'static str,
    },
}

/// Median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

fn read_json(path: &Path) -> Result<Value, ReportError> {
    let text = fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|_| ReportError::Format {
        path: path.to_owned(),
        what: "not JSON",
    })
}

/// Criterion's median time per iteration, in nanoseconds, of `group/id` in `baseline`.
pub fn criterion_median_ns(
    criterion_dir: &Path,
    group: &str,
    id: &str,
    baseline: &str,
) -> Result<f64, ReportError> {
    let path = criterion_dir
        .join(group)
        .join(id)
        .join(baseline)
        .join("estimates.json");
    let json = read_json(&path)?;
    json.pointer("/median/point_estimate")
        .and_then(Value::as_f64)
        .ok_or(ReportError::Format {
            path,
            what: "no median.point_estimate",
        })
}

/// The Node peer's median ops/s for `name` in one output file of `scripts/iron_peer.mjs`.
pub fn node_ops_per_sec(path: &Path, name: &str) -> Result<f64, ReportError> {
    let json = read_json(path)?;
    json.get(name)
        .and_then(|v| v.get("ops_per_sec"))
        .and_then(Value::as_f64)
        .ok_or(ReportError::Format {
            path: path.to_owned(),
            what: "missing ops_per_sec",
        })
}

/// One measured subject: its per-process figures in nanoseconds per operation.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Display name, e.g. `authkit Verifier, cache off`.
    pub label: String,
    /// Per-process ns/op.
    pub runs_ns: Vec<f64>,
}

impl Measured {
    /// The reported figure: median of the per-process figures (ns/op).
    pub fn ns(&self) -> f64 {
        median(&self.runs_ns).unwrap_or(f64::NAN)
    }

    /// Operations per second per core at the reported figure.
    pub fn ops_per_sec(&self) -> f64 {
        1e9 / self.ns()
    }
}

/// Loads one criterion subject over every baseline.
pub fn load_criterion(
    dir: &Path,
    baselines: &[String],
    group: &str,
    id: &str,
    label: &str,
) -> Result<Measured, ReportError> {
    let runs_ns = baselines
        .iter()
        .map(|b| criterion_median_ns(dir, group, id, b))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Measured {
        label: label.to_owned(),
        runs_ns,
    })
}

/// Loads one Node subject over every output file (ops/s converted to ns/op).
pub fn load_node(files: &[PathBuf], name: &str, label: &str) -> Result<Measured, ReportError> {
    let runs_ns = files
        .iter()
        .map(|f| node_ops_per_sec(f, name).map(|ops| 1e9 / ops))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Measured {
        label: label.to_owned(),
        runs_ns,
    })
}

/// Formats a time per operation with a unit that keeps three significant digits.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Formats ops/s with thousands separators.
pub fn fmt_ops(ops: f64) -> String {
    if !ops.is_finite() {
        return "n/a".into();
    }
    let n = ops.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// One table row: the subject and the subjects it is compared with.
pub struct Row {
    /// The subject.
    pub subject: Measured,
    /// `(reference, name)` pairs: each ratio printed is reference time ÷ subject time (above
    /// 1 means the subject is faster), followed by `name`.
    pub versus: Vec<(Measured, String)>,
}

impl Row {
    /// A row with no comparison.
    pub fn plain(subject: Measured) -> Self {
        Self {
            subject,
            versus: Vec::new(),
        }
    }

    /// Adds a comparison with `reference`, named `name` in the table.
    #[must_use]
    pub fn versus(mut self, reference: &Measured, name: &str) -> Self {
        self.versus.push((reference.clone(), name.to_owned()));
        self
    }
}

/// Renders rows as a markdown table.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| subject | time/op | ops/s/core | per-process ops/s | speed relative to (ref time ÷ this time) |\n\
         |---|---:|---:|---|---|\n",
    );
    for row in rows {
        let runs: Vec<String> = row
            .subject
            .runs_ns
            .iter()
            .map(|ns| fmt_ops(1e9 / ns))
            .collect();
        let ratio: Vec<String> = row
            .versus
            .iter()
            .map(|(reference, name)| format!("{:.2}× {name}", reference.ns() / row.subject.ns()))
            .collect();
        let ratio = ratio.join("; ");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            row.subject.label,
            fmt_ns(row.subject.ns()),
            fmt_ops(row.subject.ops_per_sec()),
            runs.join(" / "),
            ratio
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_count_is_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }

    #[test]
    fn median_of_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ops_are_grouped_in_thousands() {
        assert_eq!(fmt_ops(1_234_567.4), "1,234,567");
        assert_eq!(fmt_ops(999.0), "999");
        assert_eq!(fmt_ns(20_512.0), "20.51 µs");
        assert_eq!(fmt_ns(812.3), "812 ns");
    }

    #[test]
    fn ratio_is_reference_time_over_subject_time() {
        let fast = Measured {
            label: "a".into(),
            runs_ns: vec![10.0],
        };
        let slow = Measured {
            label: "b".into(),
            runs_ns: vec![20.0],
        };
        let table = render(&[Row::plain(fast.clone())
            .versus(&slow, "b")
            .versus(&fast, "a")]);
        assert!(table.contains("| 2.00× b; 1.00× a |"), "{table}");
    }

    #[test]
    fn missing_estimates_file_is_a_read_error() {
        let err = criterion_median_ns(Path::new("/nonexistent"), "g", "i", "run1").unwrap_err();
        assert!(matches!(err, ReportError::Read { .. }));
    }
}
