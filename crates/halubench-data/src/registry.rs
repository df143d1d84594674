//! `datasets.toml`: named datasets, each either a file on the Hugging Face hub pinned to a
//! revision or a local file, with what we expect of its bytes and rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::DataError;

/// The repository's own `datasets.toml`, compiled in so the binary works from any directory.
pub const EMBEDDED_REGISTRY: &str = include_str!("../../../datasets.toml");

/// The name of the demo dataset compiled into the binary.
pub const DEMO: &str = "demo";

/// The six columns of HaluBench's schema, in its order.
pub const COLUMNS: [&str; 6] = ["id", "passage", "question", "answer", "label", "source_ds"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Parquet,
    Jsonl,
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }

    /// The format a file name implies, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// One `[name]` table of `datasets.toml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    description: Option<String>,
    hub: Option<String>,
    revision: Option<String>,
    file: Option<String>,
    path: Option<PathBuf>,
    format: Option<Format>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    sha256: Option<String>,
    bytes: Option<u64>,
    rows: Option<usize>,
    license: Option<String>,
}

/// Where a dataset's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file in a Hugging Face dataset repository, at a pinned revision.
    Hub {
        repo: String,
        revision: String,
        file: String,
    },
    /// A file on disk.
    File(PathBuf),
    /// The demo dataset compiled into the binary.
    Embedded,
}

/// A dataset ready to be loaded: where it is and what it must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Registry name, or the path as given for an ad-hoc file.
    pub name: String,
    pub description: Option<String>,
    pub source: Source,
    pub format: Option<Format>,
    /// HaluBench column name → the file's column name, for files that spell them otherwise.
    pub columns: BTreeMap<String, String>,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub rows: Option<usize>,
    pub license: Option<String>,
}

impl DatasetSpec {
    /// An ad-hoc local file in HaluBench's schema, with nothing pinned.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        DatasetSpec {
            name: path.display().to_string(),
            description: None,
            source: Source::File(path),
            format: None,
            columns: BTreeMap::new(),
            sha256: None,
            bytes: None,
            rows: None,
            license: None,
        }
    }

    fn demo() -> Self {
        DatasetSpec {
            name: DEMO.to_string(),
            description: Some(
                "60 hand-written examples across HaluBench's six task names, compiled into the binary"
                    .to_string(),
            ),
            source: Source::Embedded,
            format: Some(Format::Jsonl),
            columns: BTreeMap::new(),
            sha256: None,
            bytes: None,
            rows: Some(60),
            license: Some("Apache-2.0 (written for halubench)".to_string()),
        }
    }
}

/// The parsed registry. Relative `path`s are resolved against `base_dir`.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Where it was read from, for error messages.
    pub origin: String,
    entries: BTreeMap<String, DatasetSpec>,
}

impl Registry {
    /// Reads a registry file; relative paths inside resolve against its directory.
    pub fn from_file(path: &Path) -> Result<Registry, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Registry::parse(&text, &path.display().to_string(), base)
    }

    /// The copy of `datasets.toml` compiled into the binary; relative paths resolve against
    /// the current directory.
    pub fn embedded() -> Registry {
        // The embedded file is checked by a unit test, so this cannot fail at run time.
        Registry::parse(
            EMBEDDED_REGISTRY,
            "the built-in datasets.toml",
            Path::new(""),
        )
        .unwrap_or_else(|_| Registry {
            origin: "the built-in datasets.toml".to_string(),
            entries: BTreeMap::from([(DEMO.to_string(), DatasetSpec::demo())]),
        })
    }

    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<Registry, DataError> {
        let err = |message: String| DataError::Registry {
            path: origin.to_string(),
            message,
        };
        let raw: BTreeMap<String, RawEntry> =
            toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut entries = BTreeMap::from([(DEMO.to_string(), DatasetSpec::demo())]);
        for (name, entry) in raw {
            if name == DEMO {
                return Err(err(format!(
                    "`{DEMO}` is the built-in demo; pick another name"
                )));
            }
            let spec =
                entry_to_spec(&name, entry, base_dir).map_err(|m| err(format!("[{name}]: {m}")))?;
            entries.insert(name, spec);
        }
        Ok(Registry {
            origin: origin.to_string(),
            entries,
        })
    }

    pub fn get(&self, name: &str) -> Option<&DatasetSpec> {
        self.entries.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn entries(&self) -> impl Iterator<Item = &DatasetSpec> {
        self.entries.values()
    }

    /// `--dataset`: a registry name, else a path to an existing file.
    pub fn resolve(&self, name_or_path: &str) -> Result<DatasetSpec, DataError> {
        if let Some(spec) = self.get(name_or_path) {
            return Ok(spec.clone());
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            return Ok(DatasetSpec::file(path));
        }
        Err(DataError::UnknownDataset {
            name: name_or_path.to_string(),
            registry: self.origin.clone(),
            known: self.names(),
        })
    }
}

fn entry_to_spec(name: &str, raw: RawEntry, base_dir: &Path) -> Result<DatasetSpec, String> {
    for key in raw.columns.keys() {
        if !COLUMNS.contains(&key.as_str()) {
            return Err(format!(
                "`columns` maps unknown column `{key}`; the keys must be HaluBench's columns: {}",
                COLUMNS.join(", ")
            ));
        }
    }
    if let Some(sha) = &raw.sha256
        && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!("`sha256` must be 64 hex digits, got {sha:?}"));
    }
    let source = match (raw.hub, raw.path) {
        (Some(repo), None) => {
            let revision = raw
                .revision
                .ok_or("a `hub` dataset needs a pinned `revision` (a commit hash)")?;
            let file = raw.file.ok_or("a `hub` dataset needs the `file` to read")?;
            Source::Hub {
                repo,
                revision,
                file,
            }
        }
        (None, Some(path)) => {
            if raw.revision.is_some() || raw.file.is_some() {
                return Err("`revision` and `file` only apply to `hub` datasets".to_string());
            }
            Source::File(if path.is_absolute() {
                path
            } else {
                base_dir.join(path)
            })
        }
        (Some(_), Some(_)) => return Err("set either `hub` or `path`, not both".to_string()),
        (None, None) => {
            return Err("set `hub` (a Hugging Face dataset) or `path` (a local file)".to_string());
        }
    };
    Ok(DatasetSpec {
        name: name.to_string(),
        description: raw.description,
        source,
        format: raw.format,
        columns: raw.columns,
        sha256: raw.sha256.map(|s| s.to_ascii_lowercase()),
        bytes: raw.bytes,
        rows: raw.rows,
        license: raw.license,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_registry_parses_and_pins_halubench() {
        let registry = Registry::parse(EMBEDDED_REGISTRY, "embedded", Path::new(""))
            .expect("the repository's datasets.toml must parse");
        let hb = registry.get("halubench").expect("halubench entry");
        match &hb.source {
            Source::Hub {
                repo,
                revision,
                file,
            } => {
                assert_eq!(repo, "PatronusAI/HaluBench");
                assert_eq!(revision.len(), 40, "revision must be a full commit hash");
                assert_eq!(file, "data/test-00000-of-00001.parquet");
            }
            other => panic!("halubench must come from the hub, got {other:?}"),
        }
        assert_eq!(hb.rows, Some(14_900));
        assert_eq!(hb.bytes, Some(7_512_526));
        assert!(registry.get(DEMO).is_some());
    }

    #[test]
    fn rejects_unknown_keys_and_mapped_columns() {
        let bad_key = Registry::parse("[x]\npath = \"a.csv\"\nrowz = 3\n", "t", Path::new(""));
        assert!(matches!(bad_key, Err(DataError::Registry { .. })));
        let bad_col = Registry::parse(
            "[x]\npath = \"a.csv\"\ncolumns = { context = \"passage\" }\n",
            "t",
            Path::new(""),
        );
        let msg = bad_col.expect_err("unknown mapped column").to_string();
        assert!(msg.contains("`context`"), "{msg}");
    }

    #[test]
    fn relative_paths_resolve_against_the_registry() {
        let reg = Registry::parse("[x]\npath = \"data/a.csv\"\n", "t", Path::new("/srv/bench"))
            .expect("parses");
        assert_eq!(
            reg.get("x").map(|s| &s.source),
            Some(&Source::File(PathBuf::from("/srv/bench/data/a.csv")))
        );
    }

    #[test]
    fn hub_entries_need_a_revision() {
        let err = Registry::parse(
            "[x]\nhub = \"a/b\"\nfile = \"f.parquet\"\n",
            "t",
            Path::new(""),
        )
        .expect_err("no revision");
        assert!(err.to_string().contains("revision"), "{err}");
    }
}
