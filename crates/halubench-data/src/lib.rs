//! Datasets for halubench: the `datasets.toml` registry, downloads through `hf-hub` into
//! the standard Hugging Face cache, local parquet/JSONL/CSV files read with polars, strict
//! validation against HaluBench's schema, and the selection of examples for a run.
//!
//! It does not judge or score anything, and it never reaches for the network except to
//! download a registry dataset that is missing from the cache (and never when
//! `HF_HUB_OFFLINE` is set).

mod error;
pub mod hub;
mod load;
pub mod registry;
mod select;

use std::collections::BTreeMap;
use std::path::PathBuf;

use halubench_core::{DatasetInfo, Example, Label};

pub use error::DataError;
pub use hub::HubSettings;
pub use load::sha256_hex;
pub use registry::{DatasetSpec, Format, Registry, Source};
pub use select::{SelectOptions, select};

use load::FileBytes;

/// The demo dataset compiled into the binary.
const DEMO_JSONL: &str = include_str!("demo.jsonl");

/// A loaded, validated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub info: DatasetInfo,
    pub examples: Vec<Example>,
    /// Things a user should know that do not stop the load: an unpinned digest, repeated
    /// rows.
    pub warnings: Vec<String>,
}

/// Where a dataset's file is, fetching it into the Hugging Face cache if it must.
/// Returns `None` for the embedded demo.
pub fn locate(spec: &DatasetSpec, hub: &HubSettings) -> Result<Option<Located>, DataError> {
    Ok(match &spec.source {
        Source::Embedded => None,
        Source::File(path) => Some(Located {
            path: path.clone(),
            hub_sha256: None,
        }),
        Source::Hub {
            repo,
            revision,
            file,
        } => {
            let cached = hub::fetch(
                hub,
                &spec.name,
                hub::HubFile {
                    kind: hub::RepoKind::Dataset,
                    repo,
                    revision,
                    file,
                },
            )?;
            Some(Located {
                path: cached.path,
                hub_sha256: cached.blob_sha256,
            })
        }
    })
}

/// A dataset file on disk.
#[derive(Debug, Clone)]
pub struct Located {
    pub path: PathBuf,
    /// The hub's digest of the file, when the cache records one.
    pub hub_sha256: Option<String>,
}

/// Locates, reads, verifies and validates a dataset.
pub fn load(spec: &DatasetSpec, hub: &HubSettings) -> Result<Dataset, DataError> {
    let located = locate(spec, hub)?;
    let (file, format) = match &located {
        None => (
            FileBytes::new(
                PathBuf::from("<embedded demo.jsonl>"),
                DEMO_JSONL.as_bytes().to_vec(),
            ),
            Format::Jsonl,
        ),
        Some(found) => {
            let format = spec
                .format
                .or_else(|| Format::from_path(&found.path))
                .or_else(|| Format::from_path(std::path::Path::new(&spec.name)))
                .ok_or_else(|| DataError::UnknownFormat {
                    path: found.path.clone(),
                })?;
            (FileBytes::read(&found.path)?, format)
        }
    };
    let mut warnings: Vec<String> = verify_bytes(spec, located.as_ref(), &file)?
        .into_iter()
        .collect();
    let examples = load::parse_examples(&file, format, &spec.columns, &mut warnings)?;
    if let Some(expected) = spec.rows
        && expected != examples.len()
    {
        return Err(DataError::SizeMismatch {
            path: file.path.clone(),
            what: "rows",
            expected: expected as u64,
            actual: examples.len() as u64,
        });
    }
    let (revision, source) = match &spec.source {
        Source::Hub { revision, .. } => (Some(revision.clone()), file.path.display().to_string()),
        Source::File(path) => (None, path.display().to_string()),
        Source::Embedded => (None, "embedded".to_string()),
    };
    Ok(Dataset {
        info: DatasetInfo {
            name: spec.name.clone(),
            source,
            revision,
            sha256: file.sha256.clone(),
            rows: examples.len(),
        },
        examples,
        warnings,
    })
}

/// Checks size and digest against the registry, or against the hub's own digest when the
/// registry pins none. Returns a warning when nothing could be checked for a hub file.
fn verify_bytes(
    spec: &DatasetSpec,
    located: Option<&Located>,
    file: &FileBytes,
) -> Result<Option<String>, DataError> {
    if let Some(expected) = spec.bytes
        && expected != file.bytes.len() as u64
    {
        return Err(DataError::SizeMismatch {
            path: file.path.clone(),
            what: "bytes",
            expected,
            actual: file.bytes.len() as u64,
        });
    }
    let hub_sha256 = located.and_then(|l| l.hub_sha256.as_deref());
    let (expected, origin) = match (&spec.sha256, hub_sha256) {
        (Some(pinned), _) => (pinned.as_str(), "pinned in datasets.toml"),
        (None, Some(blob)) => (blob, "the hub's digest, from the cache's blob name"),
        (None, None) => {
            return Ok(matches!(spec.source, Source::Hub { .. }).then(|| {
                format!(
                    "no sha256 is pinned for `{}` and the cache holds no hub digest; the file's sha256 is {} (pin it in datasets.toml)",
                    spec.name, file.sha256
                )
            }));
        }
    };
    if !expected.eq_ignore_ascii_case(&file.sha256) {
        return Err(DataError::Sha256Mismatch {
            path: file.path.clone(),
            expected: expected.to_string(),
            actual: file.sha256.clone(),
            origin,
        });
    }
    Ok(None)
}

/// Rows per task and label, and passage lengths, for `datasets inspect`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskStats {
    pub pass: usize,
    pub fail: usize,
    /// Passage lengths in characters: min, median, mean, max.
    pub passage_chars: LengthStats,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LengthStats {
    pub min: usize,
    pub median: usize,
    pub mean: f64,
    pub p95: usize,
    pub max: usize,
}

impl LengthStats {
    pub fn of(mut lengths: Vec<usize>) -> LengthStats {
        if lengths.is_empty() {
            return LengthStats::default();
        }
        lengths.sort_unstable();
        let n = lengths.len();
        // Nearest-rank percentiles: always an observed value.
        let rank = |p: f64| lengths[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        LengthStats {
            min: lengths[0],
            median: rank(0.5),
            mean: lengths.iter().sum::<usize>() as f64 / n as f64,
            p95: rank(0.95),
            max: lengths[n - 1],
        }
    }
}

/// Per-task statistics in the dataset's task spelling.
pub fn inspect(examples: &[Example]) -> BTreeMap<String, TaskStats> {
    let mut lengths: BTreeMap<String, (usize, usize, Vec<usize>)> = BTreeMap::new();
    for e in examples {
        let entry = lengths.entry(e.task.clone()).or_default();
        match e.label {
            Label::Pass => entry.0 += 1,
            Label::Fail => entry.1 += 1,
        }
        entry.2.push(e.passage.chars().count());
    }
    lengths
        .into_iter()
        .map(|(task, (pass, fail, lens))| {
            (
                task,
                TaskStats {
                    pass,
                    fail,
                    passage_chars: LengthStats::of(lens),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = LengthStats::of((1..=100).collect());
        assert_eq!((s.min, s.median, s.p95, s.max), (1, 50, 95, 100));
        assert!((s.mean - 50.5).abs() < 1e-12);
        assert_eq!(LengthStats::of(vec![]), LengthStats::default());
    }
}
