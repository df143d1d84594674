//! Writing a run directory's files. Each file is written to a temporary name and renamed
//! into place, so a reader never sees half a report.

use std::path::Path;

use anyhow::Context;
use halubench_core::RunManifest;
use halubench_score::Summary;

pub const JOURNAL: &str = "judgements.jsonl";
pub const MANIFEST: &str = "run.toml";

pub fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    write_bytes_atomically(path, contents.as_bytes())
}

pub fn write_bytes_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    // The whole name plus .tmp: accuracy.svg and accuracy.png must not share one.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

pub fn write_manifest(dir: &Path, manifest: &RunManifest) -> anyhow::Result<()> {
    let text = toml::to_string_pretty(manifest).context("cannot serialise run.toml")?;
    write_atomically(&dir.join(MANIFEST), &text)
}

pub fn read_manifest(dir: &Path) -> anyhow::Result<RunManifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not a run manifest", path.display()))
}

/// Writes summary.json, summary.md and summary.csv; returns the markdown for printing.
pub fn write_summaries(
    dir: &Path,
    manifest: &RunManifest,
    summary: &Summary,
) -> anyhow::Result<String> {
    let title = format!(
        "{} on {} ({})",
        manifest.judge.name, manifest.dataset.name, manifest.run_id
    );
    let markdown = summary.to_markdown(&title);
    write_atomically(&dir.join("summary.json"), &summary.to_json())?;
    write_atomically(&dir.join("summary.md"), &markdown)?;
    write_atomically(&dir.join("summary.csv"), &summary.to_csv())?;
    Ok(markdown)
}
