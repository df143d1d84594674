use std::path::PathBuf;

/// Everything that can go wrong between a dataset name and a list of validated examples.
/// Each variant names the file, row, column or URL a user needs to fix the problem.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid dataset registry {path}: {message}")]
    Registry { path: String, message: String },

    #[error(
        "unknown dataset `{name}`: it is not a name in {registry} (known: {}) and no file exists at that path",
        known.join(", ")
    )]
    UnknownDataset {
        name: String,
        registry: String,
        known: Vec<String>,
    },

    #[error(
        "dataset `{dataset}` ({location}) is not in the Hugging Face cache at {} and {reason}; \
         fetch it on a machine with access (`halubench datasets fetch {dataset}`) and copy that cache here, \
         point HF_HOME or HF_HUB_CACHE at an existing cache, or pass a local copy with `--dataset path/to/file.parquet`",
        cache_dir.display()
    )]
    NotCached {
        dataset: String,
        /// `repo@revision, file path`.
        location: String,
        cache_dir: PathBuf,
        reason: String,
    },

    #[error(
        "model {location} is not in the Hugging Face cache at {} and {reason}; download it on a \
         machine with access and copy that cache here, point HF_HOME or HF_HUB_CACHE at an \
         existing cache, or pass a local path with `--model path/to/model.gguf`",
        cache_dir.display()
    )]
    ModelNotCached {
        /// `repo@revision, file path`.
        location: String,
        cache_dir: PathBuf,
        reason: String,
    },

    #[error("the hub answered {url} with HTTP {status}{hint}")]
    HubStatus {
        url: String,
        status: u16,
        hint: &'static str,
    },

    #[error("downloading {url} failed: {message}")]
    Download { url: String, message: String },

    #[error(
        "downloading {url} did not finish within {secs} s (set HALUBENCH_DOWNLOAD_TIMEOUT to allow longer)"
    )]
    DownloadTimeout { url: String, secs: u64 },

    #[error(
        "{path}: sha256 is {actual}, expected {expected} ({origin}); the file is corrupt or a different version"
    )]
    Sha256Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
        origin: &'static str,
    },

    #[error("{path}: has {actual} {what}, expected {expected}")]
    SizeMismatch {
        path: PathBuf,
        what: &'static str,
        expected: u64,
        actual: u64,
    },

    #[error(
        "{path}: cannot tell the file format from its name; use a .parquet, .jsonl or .csv extension or set `format` in datasets.toml"
    )]
    UnknownFormat { path: PathBuf },

    #[error("{path}: the file is empty")]
    EmptyFile { path: PathBuf },

    #[error(
        "{path}: not a parquet file (no PAR1 magic bytes); is it another format with a .parquet name?"
    )]
    NotParquet { path: PathBuf },

    #[error("{path}: cannot parse as {format}: {message}")]
    Parse {
        path: PathBuf,
        format: &'static str,
        message: String,
    },

    #[error("{path}: has no rows")]
    NoRows { path: PathBuf },

    #[error("{path}: missing column `{column}`{}; the file has: {}",
        mapped_from.as_ref().map(|m| format!(" (mapped from `{m}` in datasets.toml)")).unwrap_or_default(),
        found.join(", "))]
    MissingColumn {
        path: PathBuf,
        column: String,
        mapped_from: Option<String>,
        found: Vec<String>,
    },

    #[error("{path}: column `{column}` has type {found}, expected string")]
    WrongType {
        path: PathBuf,
        column: String,
        found: String,
    },

    #[error("{path}: row {row}{}: column `{column}` is null", id_suffix(id))]
    NullValue {
        path: PathBuf,
        column: String,
        row: usize,
        id: Option<String>,
    },

    #[error("{path}: row {row}{}: column `{column}` is empty", id_suffix(id))]
    EmptyValue {
        path: PathBuf,
        column: String,
        row: usize,
        id: Option<String>,
    },

    #[error(
        "{path}: row {row}{}: label is {value:?}, expected \"PASS\" or \"FAIL\"",
        id_suffix(id)
    )]
    BadLabel {
        path: PathBuf,
        row: usize,
        id: Option<String>,
        value: String,
    },

    #[error("{path}: id {id:?} appears twice, in rows {first_row} and {row}")]
    DuplicateId {
        path: PathBuf,
        id: String,
        first_row: usize,
        row: usize,
    },

    #[error("unknown task `{task}` in --tasks{hint}; the dataset has: {}", available.join(", "))]
    UnknownTask {
        task: String,
        available: Vec<String>,
        hint: String,
    },
}

fn id_suffix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" (id {id:?})"))
        .unwrap_or_default()
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}
