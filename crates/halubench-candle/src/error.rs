use std::path::PathBuf;

/// Everything that can go wrong loading or running a local model. Each variant names the
/// file, key or tensor involved, so that a user can tell a bad download from a bad flag.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a readable GGUF file: {source}", path.display())]
    Gguf {
        path: PathBuf,
        source: Box<candle_core::Error>,
    },
    #[error("{}: metadata `{key}` {problem}", path.display())]
    Metadata {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("{}: tensor `{name}`: {source}", path.display())]
    Tensor {
        path: PathBuf,
        name: String,
        source: Box<candle_core::Error>,
    },
    #[error("{}: {problem}", path.display())]
    Unsupported { path: PathBuf, problem: String },
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("tokenizer from {origin}: {message}")]
    Tokenizer { origin: String, message: String },
    #[error("chat template from {origin}: {message}")]
    Template { origin: String, message: String },
    #[error("{}: no model there: {hint}", path.display())]
    NotAModel { path: PathBuf, hint: String },
    #[error("cannot open device {device}: {source}")]
    Device {
        device: String,
        source: Box<candle_core::Error>,
    },
    #[error("cannot generate: {0}")]
    Request(String),
    #[error("model computation failed: {0}")]
    Compute(Box<candle_core::Error>),
}

impl From<candle_core::Error> for LocalError {
    fn from(e: candle_core::Error) -> Self {
        LocalError::Compute(Box::new(e))
    }
}

pub type Result<T, E = LocalError> = std::result::Result<T, E>;
