//! Judges: the `Judge` trait every backend implements, and the built-in baseline judge
//! that needs no model.
//!
//! This crate holds no HTTP client, no model runtime and no dataframe library: backends
//! that need those live in their own crates and implement [`Judge`]. Judges do not decide
//! how many calls run at once or retry anything; the runner does.

pub mod baseline;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use halubench_core::{Example, JudgeInfo, Verdict};

pub use baseline::{Assessment, BaselineJudge};

/// A boxed future, so that `Judge` can be used as `Arc<dyn Judge>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a judge answered for one example.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// `Invalid` when the reply carries no usable verdict; the reply is still kept.
    pub verdict: Verdict,
    /// The reply text exactly as produced.
    pub raw: String,
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

    /// Judges one example. An unusable reply is `Ok` with `Verdict::Invalid`; `Err` means
    /// there is no reply at all.
    fn judge<'a>(&'a self, example: &'a Example) -> BoxFuture<'a, Result<Reply, JudgeError>>;
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
    /// Will fail the same way every time (a rejected request, a prompt too long).
    #[error("judge rejected the request: {reason}")]
    Rejected { reason: String },
}

impl JudgeError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, JudgeError::Unavailable { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JudgeError::Unavailable { retry_after, .. } => *retry_after,
            JudgeError::Rejected { .. } => None,
        }
    }
}
