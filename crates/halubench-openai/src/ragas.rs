//! The RAGAS faithfulness judge over an OpenAI-compatible endpoint: per example, one call
//! that turns the answer's sentences into standalone statements, then (when there are any)
//! one call that checks all of them against the passage. Score = supported / statements;
//! PASS when the score is above the threshold. What is asked and how replies are read is
//! `halubench_judge::ragas`; this module only makes the calls.
//!
//! A reply that is not JSON of the asked shape gets exactly one repair request (the bad
//! reply sent back with a request for the JSON alone); a second bad reply makes the example
//! INVALID (`malformed_json`). An answer with nothing to check is INVALID
//! (`no_statements`) and costs no verification call; in `paper` mode an answer with no
//! sentence ending in "." costs no call at all (ragas would have asked with an empty
//! sentence list, and scored NaN either way).
//!
//! The calls share [`Endpoint`] with [`OpenAiJudge`](crate::OpenAiJudge): the same client,
//! URL rotation, secret scrubbing, body cap and error classification. It does not retry: a
//! failed call fails the example, and the runner judges the example again from its first
//! call.

use std::fmt;

use halubench_core::{Example, JudgeInfo, RagasTrace, Usage};
use halubench_judge::ragas::{
    self, Malformed, RagasMode, RagasPrompts, RagasStep, parse_statements, parse_verdicts,
    split_sentences,
};
use halubench_judge::{BoxFuture, Estimate, Judge, JudgeError, Reply};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Completion, Endpoint, OpenAiError, OpenAiSettings};

/// What makes the RAGAS judge differ from ragas' defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RagasSettings {
    pub mode: RagasMode,
    /// PASS when the score is above this; strictly between 0 and 1.
    pub threshold: f64,
}

impl Default for RagasSettings {
    fn default() -> Self {
        RagasSettings {
            mode: RagasMode::default(),
            threshold: ragas::DEFAULT_THRESHOLD,
        }
    }
}

pub struct RagasJudge {
    endpoint: Endpoint,
    ragas: RagasSettings,
    prompts: RagasPrompts,
}

impl fmt::Debug for RagasJudge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RagasJudge")
            .field("settings", &self.endpoint.settings)
            .field("ragas", &self.ragas)
            .finish_non_exhaustive()
    }
}

/// What one example's calls added up to.
#[derive(Default)]
struct Calls {
    usage: Option<Usage>,
    model: Option<String>,
    rejected: Vec<String>,
}

impl Calls {
    fn add(&mut self, completion: &Completion) {
        if let Some(usage) = completion.usage {
            *self.usage.get_or_insert_with(Usage::default) += usage;
        }
        if completion.model.is_some() {
            self.model.clone_from(&completion.model);
        }
    }
}

impl RagasJudge {
    /// `settings.logprobs` is ignored: no reply of this judge holds a verdict token.
    pub fn new(settings: OpenAiSettings, ragas: RagasSettings) -> Result<RagasJudge, OpenAiError> {
        if !(ragas.threshold > 0.0 && ragas.threshold < 1.0) {
            return Err(OpenAiError::Threshold(ragas.threshold));
        }
        Ok(RagasJudge {
            endpoint: Endpoint::new(settings)?,
            ragas,
            prompts: RagasPrompts::v1(),
        })
    }

    /// `text` with every secret this judge sends replaced by `***` (see
    /// [`OpenAiJudge::redact`](crate::OpenAiJudge::redact)).
    pub fn redact(&self, text: &str) -> String {
        self.endpoint.redact(text)
    }

    /// See [`OpenAiJudge::insecure_credentials_warning`](crate::OpenAiJudge::insecure_credentials_warning).
    pub fn insecure_credentials_warning(&self) -> Option<String> {
        self.endpoint.insecure_credentials_warning()
    }

    /// Asks `prompt` and reads the reply with `parse`; a reply that does not parse gets one
    /// repair request in the same conversation. The reply used (the repaired one, after a
    /// repair) and what it parsed to, if it did.
    async fn ask<T>(
        &self,
        calls: &mut Calls,
        prompt: String,
        step: RagasStep,
        parse: impl Fn(&str) -> Result<T, Malformed>,
    ) -> Result<(String, Option<T>), JudgeError> {
        let mut messages = vec![json!({"role": "user", "content": prompt})];
        let first = self
            .endpoint
            .chat(&self.endpoint.chat_body(json!(messages)))
            .await?;
        calls.add(&first);
        let problem = match parse(&first.content) {
            Ok(parsed) => return Ok((first.content, Some(parsed))),
            Err(problem) => problem,
        };
        messages.push(json!({"role": "assistant", "content": first.content}));
        messages.push(json!({
            "role": "user",
            "content": self.prompts.render_repair(step, &problem.0),
        }));
        calls.rejected.push(first.content);
        let second = self
            .endpoint
            .chat(&self.endpoint.chat_body(json!(messages)))
            .await?;
        calls.add(&second);
        let parsed = parse(&second.content).ok();
        Ok((second.content, parsed))
    }

    async fn call(&self, example: &Example) -> Result<Reply, JudgeError> {
        let sentences = split_sentences(&example.answer, self.ragas.mode);
        let mut calls = Calls::default();
        let mut trace = RagasTrace {
            sentences: sentences.len(),
            statements_reply: String::new(),
            verification_reply: None,
            rejected_replies: Vec::new(),
            statements: 0,
            supported: 0,
            score: None,
        };
        if !sentences.is_empty() {
            let prompt = self.prompts.render_statements(example, &sentences);
            let (reply, statements) = self
                .ask(&mut calls, prompt, RagasStep::Statements, parse_statements)
                .await?;
            trace.statements_reply = reply;
            let statements = statements.unwrap_or_default();
            trace.statements = statements.len();
            if !statements.is_empty() {
                let prompt = self.prompts.render_verification(example, &statements);
                let count = statements.len();
                let (reply, supported) = self
                    .ask(&mut calls, prompt, RagasStep::Verification, |reply| {
                        parse_verdicts(reply, count)
                    })
                    .await?;
                trace.verification_reply = Some(reply);
                if let Some(supported) = supported {
                    trace.supported = supported;
                    trace.score = ragas::score(supported, count);
                }
            }
        }
        trace.rejected_replies = calls.rejected;
        let raw = trace
            .verification_reply
            .clone()
            .unwrap_or_else(|| trace.statements_reply.clone());
        Ok(self.with_verdict(Reply {
            verdict: halubench_core::Verdict::Invalid,
            raw,
            invalid_reason: None,
            usage: calls.usage,
            model: calls.model,
            p_fail: None,
            ragas: Some(trace),
        }))
    }

    /// The reply's verdict, reason and p_fail read from its trace under this judge's
    /// threshold. A reply without a trace is left as it is.
    fn with_verdict(&self, reply: Reply) -> Reply {
        let Some(trace) = &reply.ragas else {
            return reply;
        };
        let outcome = ragas::outcome(trace, self.ragas.threshold);
        Reply {
            verdict: outcome.verdict,
            invalid_reason: outcome.invalid.map(|r| r.as_str().to_string()),
            p_fail: outcome.p_fail,
            ..reply
        }
    }

    /// The statement-generation request for an example, or `None` when no call is made.
    fn statements_body(&self, example: &Example) -> Option<serde_json::Value> {
        let sentences = split_sentences(&example.answer, self.ragas.mode);
        (!sentences.is_empty()).then(|| {
            let prompt = self.prompts.render_statements(example, &sentences);
            self.endpoint
                .chat_body(json!([{"role": "user", "content": prompt}]))
        })
    }
}

impl Judge for RagasJudge {
    fn info(&self) -> JudgeInfo {
        let mut settings = self.endpoint.info_settings();
        settings.insert("mode".to_string(), self.ragas.mode.as_str().to_string());
        settings.insert("threshold".to_string(), self.ragas.threshold.to_string());
        let p = &self.prompts;
        settings.insert(
            "templates".to_string(),
            [&p.statements, &p.verify, &p.repair]
                .map(|t| format!("{}={}", t.name(), t.sha256()))
                .join(" "),
        );
        JudgeInfo {
            name: "ragas".to_string(),
            prompt_sha256: Some(p.sha256()),
            settings,
        }
    }

    fn health(&self) -> BoxFuture<'_, Result<(), JudgeError>> {
        Box::pin(self.endpoint.health())
    }

    /// Everything the two calls send, less the threshold: a trace is judged again under
    /// the current threshold when it comes back from the cache ([`Judge::reread_cached`]).
    fn cache_key(&self, example: &Example) -> Option<String> {
        let key = json!({
            "judge": "ragas",
            "base_urls": self.endpoint.cache_urls(),
            "mode": self.ragas.mode.as_str(),
            // Also shapes the verification and repair requests, which are not sent yet.
            "body": self.statements_body(example),
            "passage": example.passage,
            "prompts_sha256": self.prompts.sha256(),
        });
        let digest = Sha256::digest(key.to_string().as_bytes());
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Two calls at about four characters a token: the statement prompt, and a verification
    /// prompt of the passage and statements about as long as the answer; each reply as long
    /// as `max_tokens` allows. Repairs are not counted. `None` when no call would be made.
    fn estimate(&self, example: &Example) -> Option<Estimate> {
        let body = self.statements_body(example)?;
        let statements = body["messages"][0]["content"]
            .as_str()
            .map_or(0, |s| s.chars().count());
        let verification = self.prompts.verify.text().chars().count()
            + example.passage.chars().count()
            + example.answer.chars().count();
        Some(Estimate {
            calls: 2,
            usage: Usage {
                prompt_tokens: ((statements + verification) as u64).div_ceil(4),
                completion_tokens: 2 * u64::from(self.endpoint.settings.max_tokens),
            },
        })
    }

    fn reread_cached(&self, reply: Reply) -> Reply {
        self.with_verdict(reply)
    }

    fn judge<'a>(&'a self, example: &'a Example) -> BoxFuture<'a, Result<Reply, JudgeError>> {
        Box::pin(self.call(example))
    }
}
