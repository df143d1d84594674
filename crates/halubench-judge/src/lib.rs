//! Judges: the `Judge` trait every backend implements, and the built-in baseline judge
//! that needs no model.
//!
//! Model judges share the prompt templates of [`prompt`] (the Lynx prompt is embedded) and
//! read their replies with the tolerant verdict parser of [`verdict`].
//!
//! This crate holds no HTTP client, no model runtime and no dataframe library: backends
//! that need those live in their own crates and implement [`Judge`]. Judges do not decide
//! how many calls run at once or retry anything; the runner does.

pub mod baseline;
pub mod prompt;
pub mod ragas;
pub mod verdict;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use halubench_core::{Example, JudgeInfo, RagasTrace, Usage, Verdict};

pub use baseline::{Assessment, BaselineJudge};
pub use prompt::PromptTemplate;
pub use verdict::{
    InvalidReason, ParsedVerdict, parse_verdict, strip_verdict_lead, verdict_search_start,
    verdict_word_prefix,
};

/// A boxed future, so that `Judge` can be used as `Arc<dyn Judge>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a judge answered for one example.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// `Invalid` when the reply carries no usable verdict; the reply is still kept.
    pub verdict: Verdict,
    /// The reply text exactly as produced.
    pub raw: String,
    /// Why `verdict` is `Invalid`, in a word (`no_score`, `truncated`, ...).
    pub invalid_reason: Option<String>,
    /// Tokens spent, when the judge reports them.
    pub usage: Option<Usage>,
    /// The model that answered, as the judge reported it.
    pub model: Option<String>,
    /// The judge's probability, in [0, 1], that the answer is a hallucination, when it has
    /// one (see `Judgement::p_fail`).
    pub p_fail: Option<f64>,
    /// The RAGAS judge's working (both replies, statement count, score); `None` for every
    /// other judge.
    pub ragas: Option<RagasTrace>,
}

/// A judge of (question, passage, answer) triples.
pub trait Judge: Send + Sync {
    /// Name and settings, as recorded in `run.toml`. Never includes secrets.
    fn info(&self) -> JudgeInfo;

    /// Checks that the judge can answer at all (a server is up, a model is loaded) before a
    /// run starts, so a misconfiguration fails in seconds rather than on every example.
    fn health(&self) -> BoxFuture<'_, Result<(), JudgeError>> {
        Box::pin(async { Ok(()) })
    }

    /// A digest of everything that shapes this judge's reply to `example`, for judges whose
    /// replies are worth caching (paid or slow calls). `None` disables the cache.
    fn cache_key(&self, _example: &Example) -> Option<String> {
        None
    }

    /// An upper-bound guess of the calls and tokens judging `example` would take, for
    /// `--dry-run`. `None` for judges that cost nothing.
    fn estimate(&self, _example: &Example) -> Option<Estimate> {
        None
    }

    /// What the user should know after a run that the judgements do not say (a server that
    /// refused a request parameter, say), one line each.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// A reply served from the response cache, as this judge reads it now. The cache keeps
    /// what the model said, never a verdict, and reads the verdict from the text with
    /// [`parse_verdict`]; a judge whose verdict comes from elsewhere (the RAGAS judge: a
    /// score against its threshold) sets it again here. The default keeps the reply as is.
    fn reread_cached(&self, reply: Reply) -> Reply {
        reply
    }

    /// Judges one example. An unusable reply is `Ok` with `Verdict::Invalid`; `Err` means
    /// there is no reply at all.
    fn judge<'a>(&'a self, example: &'a Example) -> BoxFuture<'a, Result<Reply, JudgeError>>;
}

/// What judging one example is expected to take (see [`Judge::estimate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Requests sent.
    pub calls: u64,
    pub usage: Usage,
}

/// A judge call that produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// Worth trying again later: the judge is overloaded, timed out or unreachable.
    #[error("judge unavailable: {reason}")]
    Unavailable {
        reason: String,
        /// How long the judge asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The judge asked us to slow down (HTTP 429): retry, and send less at once.
    #[error("judge throttled the request: {reason}")]
    Throttled {
        reason: String,
        retry_after: Option<Duration>,
    },
    #[error("cannot read prompt template {}: {source}", path.display())]
    PromptRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// `template` is the file path for a template read from a file, else its name.
    #[error("prompt template {template} lacks the placeholder {placeholder}")]
    PromptPlaceholder {
        template: String,
        placeholder: &'static str,
    },
    /// Will fail the same way every time (a rejected request, a prompt too long).
    #[error("judge rejected the request: {reason}")]
    Rejected { reason: String },
}

impl JudgeError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            JudgeError::Unavailable { .. } | JudgeError::Throttled { .. }
        )
    }

    pub fn is_throttled(&self) -> bool {
        matches!(self, JudgeError::Throttled { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JudgeError::Unavailable { retry_after, .. }
            | JudgeError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
