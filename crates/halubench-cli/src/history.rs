//! The run history: one JSON line per finished run, appended, so that nightly runs can be
//! drawn as a trend. A line is written whole in one `write` on a file opened for appending,
//! so concurrent runs do not interleave their lines, and a torn last line (a crash mid-write)
//! is skipped with a warning instead of losing the history.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use halubench_core::{RunManifest, Selection};
use halubench_score::Summary;
use serde::{Deserialize, Serialize};

pub const HISTORY: &str = "history.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryLine {
    /// A run directory's name; nightly jobs often reuse one, so `started_at` tells the runs
    /// apart (a resumed run keeps it).
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    /// The judge as compare and the charts name it.
    pub judge: String,
    pub dataset: String,
    pub dataset_sha256: String,
    /// Runs of other tasks, limits or seeds are other quantities, not points of one trend.
    pub selection: Selection,
    pub examples: usize,
    /// Fractions 0–1.
    pub overall_macro: f64,
    pub overall_micro: f64,
    pub invalid: usize,
    /// Examples that got no reply from the judge (an outage, a rejected call) or were never
    /// started. Such a run measures the judge's availability, not its accuracy: the trend
    /// leaves it out.
    #[serde(default)]
    pub failed: usize,
    /// Accuracy per task, fractions 0–1, keyed by `source_ds`.
    pub tasks: BTreeMap<String, f64>,
}

impl HistoryLine {
    pub fn new(
        manifest: &RunManifest,
        judge: String,
        summary: &Summary,
        failed: usize,
    ) -> HistoryLine {
        HistoryLine {
            run_id: manifest.run_id.clone(),
            started_at: manifest.started_at.clone(),
            finished_at: manifest
                .finished_at
                .clone()
                .unwrap_or_else(|| manifest.started_at.clone()),
            judge,
            dataset: manifest.dataset.name.clone(),
            dataset_sha256: manifest.dataset.sha256.clone(),
            selection: manifest.selection.clone(),
            examples: summary.n,
            overall_macro: summary.overall_macro,
            overall_micro: summary.overall_micro,
            invalid: summary.invalid,
            failed,
            tasks: summary
                .tasks
                .iter()
                // A task the rule emptied has no accuracy to plot.
                .filter_map(|(task, score)| Some((task.clone(), score.accuracy?)))
                .collect(),
        }
    }
}

pub fn append(path: &Path, line: &HistoryLine) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut text = serde_json::to_string(line).context("cannot serialise a history line")?;
    text.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the run history {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot append to the run history {}", path.display()))
}

/// Every line of the history, oldest first. The file is read as bytes and each line decoded
/// on its own, so a line torn inside a multi-byte character costs that line only; unreadable
/// lines are skipped with a warning each, naming the line: one bad line must not hide months
/// of nightly results.
pub fn read(path: &Path) -> anyhow::Result<(Vec<HistoryLine>, Vec<String>)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the run history {}", path.display()))?;
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<HistoryLine>(line) {
            Ok(parsed) => lines.push(parsed),
            Err(e) => warnings.push(format!(
                "{}: line {} skipped: {e}",
                path.display(),
                index + 1
            )),
        }
    }
    Ok((lines, warnings))
}
