//! A judge for any OpenAI-compatible `/v1/chat/completions` endpoint: OpenAI itself, vLLM,
//! llama.cpp's server, TGI. One user message rendered from a prompt template, greedy by
//! default, the reply parsed with the lenient verdict parser.
//!
//! Unless told not to, it asks for the token log-probabilities of the reply and reads the
//! judge's probability that the answer is a hallucination from them ([`Reply::p_fail`]).
//! A server that rejects the parameter gets the call again without it, once, and never
//! again for the rest of the run ([`OpenAiJudge::logprobs_disabled`]).
//!
//! The RAGAS faithfulness judge ([`RagasJudge`]) speaks to the same endpoints through the
//! same [`Endpoint`] code: two or more chat calls per example instead of one.
//!
//! It makes one HTTP request per call (two when the server rejects `logprobs`) and
//! classifies what went wrong (worth a retry or not, and how long the server asked us to
//! wait). It does not retry, cache or limit concurrency: the runner does, for every judge
//! alike.
//!
//! Secrets (the API key, header values, credentials inside a base URL) never leave it as
//! text: URLs print redacted ([`SafeUrl`]), and whatever the server or the HTTP client
//! says (error bodies, replies, the reported model, transport errors) is scrubbed of them
//! before it becomes a reply or an error.

mod confidence;
mod ragas;
mod retry_after;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use halubench_core::{Example, JudgeInfo, Usage};
pub use halubench_core::{SafeUrl, UrlError};
use halubench_judge::{
    BoxFuture, Estimate, Judge, JudgeError, PromptTemplate, Reply, parse_verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

pub use ragas::{RagasJudge, RagasSettings};
pub use retry_after::parse_retry_after;

/// The largest response body read; a larger one fails the call (`JudgeError::Rejected`)
/// without being kept. A chat completion is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// An API key. `Debug` and `Display` print `***`; the value only ever goes into the
/// `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(value: impl Into<String>) -> ApiKey {
        ApiKey(value.into())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An extra request header. `Debug` shows the name and `***`: the value only ever goes
/// into the request.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    value: String,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name)
            .field("value", &format_args!("***"))
            .finish()
    }
}

/// Everything that shapes a request. `Debug` shows no secret: the key and header values
/// print as `***`, the URLs in their redacted form.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// One or more base URLs ending in `/v1`; calls go round-robin across them.
    pub base_urls: Vec<SafeUrl>,
    pub model: String,
    pub api_key: Option<ApiKey>,
    /// The environment variable the key came from, recorded in `run.toml` instead of it.
    pub api_key_env: Option<String>,
    pub temperature: f64,
    pub max_tokens: u32,
    /// Ask for `response_format: {"type": "json_object"}`.
    pub json_mode: bool,
    /// Extra request headers. Only the names are ever recorded.
    pub headers: Vec<Header>,
    /// The whole call, reading the response body included.
    pub timeout: Duration,
    /// Ask for the log-probabilities of the reply's tokens (`"logprobs": true,
    /// "top_logprobs": 5`), from which [`Reply::p_fail`] is read.
    pub logprobs: bool,
}

impl OpenAiSettings {
    pub fn new(base_url: SafeUrl, model: impl Into<String>) -> OpenAiSettings {
        OpenAiSettings {
            base_urls: vec![base_url],
            model: model.into(),
            api_key: None,
            api_key_env: None,
            temperature: 0.0,
            max_tokens: 600,
            json_mode: false,
            headers: Vec::new(),
            timeout: Duration::from_secs(120),
            logprobs: true,
        }
    }
}

/// Why a judge cannot be built. No variant carries a secret: a URL shows in its redacted
/// form, a header by its name only.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    #[error("invalid base URL {:?}: {}", .0.shown(), .0.reason())]
    BaseUrl(#[from] UrlError),
    #[error("no base URL given")]
    NoBaseUrl,
    #[error("invalid header {name:?}: {reason}")]
    Header { name: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("invalid RAGAS threshold {0}: it must lie strictly between 0 and 1")]
    Threshold(f64),
}

pub struct OpenAiJudge {
    endpoint: Endpoint,
    template: PromptTemplate,
    /// Set when a server rejected the `logprobs` parameter: not sent again in this run.
    logprobs_rejected: AtomicBool,
}

impl fmt::Debug for OpenAiJudge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiJudge")
            .field("settings", &self.endpoint.settings)
            .field("template", &self.template.name())
            .finish_non_exhaustive()
    }
}

/// The HTTP side shared by this crate's judges: the client, the base URLs taken in turn,
/// the secrets to scrub, the body cap, and how a failed call is classified (worth a retry or
/// not, the wait a server asked for).
struct Endpoint {
    client: reqwest::Client,
    settings: OpenAiSettings,
    /// Each base URL's chat-completions URL, as shown and as parsed for the client, made
    /// once: parsing a URL on every call was a measurable share of the engine's CPU.
    chat_urls: Vec<ChatUrl>,
    next_base: AtomicUsize,
    /// Every secret this judge sends, longest first: scrubbed from whatever the server or
    /// the HTTP client says before it can reach a journal, a report or stderr.
    secrets: Vec<String>,
}

/// A chat-completions URL: ours, which redacts itself wherever it is shown, and the client's.
struct ChatUrl {
    shown: SafeUrl,
    parsed: reqwest::Url,
}

/// One chat completion, everything taken from the server already scrubbed of secrets.
struct Completion {
    content: String,
    /// The raw `logprobs` object of the first choice, when the server sent one.
    logprobs: Option<serde_json::Value>,
    usage: Option<Usage>,
    model: Option<String>,
}

impl OpenAiJudge {
    pub fn new(
        settings: OpenAiSettings,
        template: PromptTemplate,
    ) -> Result<OpenAiJudge, OpenAiError> {
        Ok(OpenAiJudge {
            endpoint: Endpoint::new(settings)?,
            template,
            logprobs_rejected: AtomicBool::new(false),
        })
    }

    /// The request body for an example as the settings ask for it: what the response cache
    /// keys on, and what is sent (less the `logprobs` fields once a server has rejected
    /// them, see [`logprobs_disabled`](Self::logprobs_disabled)).
    pub fn request_body(&self, example: &Example) -> serde_json::Value {
        let prompt = self.template.render(example);
        let request = self.endpoint.chat_request(
            [ChatMessage::user(&prompt)],
            self.endpoint.settings.logprobs,
        );
        // Plain data with string keys: serializing it cannot fail.
        serde_json::to_value(request).unwrap_or_default()
    }

    /// Whether `logprobs` was asked for but a server rejected it, so that it is no longer
    /// sent and replies have no `p_fail`.
    pub fn logprobs_disabled(&self) -> bool {
        self.endpoint.settings.logprobs && self.logprobs_rejected.load(Ordering::Relaxed)
    }

    /// `text` with every secret this judge sends (the API key, header values, and the
    /// [`SafeUrl::secrets`] of each base URL) replaced by `***`. Secrets shorter than
    /// [`SafeUrl::MIN_SECRET_CHARS`] are left alone: scrubbing them would mangle the text.
    pub fn redact(&self, text: &str) -> String {
        self.endpoint.redact(text)
    }

    /// One line naming the base URLs that would carry a credential (the API key, a
    /// header, or a userinfo or query in the URL itself) unencrypted over `http://` to a
    /// host other than this machine; `None` when there are none. The line has no
    /// `warning:` prefix: the caller adds its own.
    pub fn insecure_credentials_warning(&self) -> Option<String> {
        self.endpoint.insecure_credentials_warning()
    }

    /// The body sent for `prompt`, serialized straight from borrowed parts (building a
    /// `serde_json::Value` tree for every call was a measurable share of the engine's CPU).
    fn wire_body(&self, prompt: &str, with_logprobs: bool) -> Vec<u8> {
        let request = self
            .endpoint
            .chat_request([ChatMessage::user(prompt)], with_logprobs);
        // Plain data with string keys: serializing it cannot fail.
        serde_json::to_vec(&request).unwrap_or_default()
    }

    async fn call(&self, example: &Example) -> Result<Reply, JudgeError> {
        let endpoint = &self.endpoint;
        let url = endpoint.next_chat_url();
        let prompt = self.template.render(example);
        let mut with_logprobs = endpoint.settings.logprobs && !self.logprobs_disabled();
        let body = self.wire_body(&prompt, with_logprobs);
        let (mut status, mut retry_after, mut text) = endpoint.post(url, body).await?;
        if with_logprobs && rejects_logprobs(status, &text) {
            // Perhaps this server does not do logprobs: the same call again without them.
            // Only if that one succeeds was it about them (an error that merely quotes the
            // request, "logprobs" and all, fails again), and then every later call goes
            // without them from the start.
            let body = self.wire_body(&prompt, false);
            let retried = endpoint.post(url, body).await?;
            if retried.0.is_success() {
                self.logprobs_rejected.store(true, Ordering::Relaxed);
                with_logprobs = false;
                (status, retry_after, text) = retried;
            }
        }
        let completion = endpoint.completion(&url.shown, status, retry_after, &text)?;
        let raw = completion.content;
        let verdict = parse_verdict(&raw);
        let p_fail = completion
            .logprobs
            .filter(|_| with_logprobs)
            .as_ref()
            .and_then(confidence::tokens)
            .and_then(|tokens| confidence::p_fail(&tokens, verdict.verdict));
        Ok(Reply {
            verdict: verdict.verdict,
            invalid_reason: verdict.invalid.map(|r| r.as_str().to_string()),
            raw,
            usage: completion.usage,
            model: completion.model,
            p_fail,
            ragas: None,
        })
    }
}

impl Endpoint {
    fn new(settings: OpenAiSettings) -> Result<Endpoint, OpenAiError> {
        if settings.base_urls.is_empty() {
            return Err(OpenAiError::NoBaseUrl);
        }
        let secrets = collect_secrets(&settings);
        let mut headers = reqwest::header::HeaderMap::new();
        for header in &settings.headers {
            // Neither error of `http` quotes the text it rejects.
            let invalid = |reason: &str| OpenAiError::Header {
                name: header.name.clone(),
                reason: reason.to_string(),
            };
            let header_name = reqwest::header::HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| invalid("not a valid header name"))?;
            let mut header_value = reqwest::header::HeaderValue::from_str(&header.value)
                .map_err(|_| invalid("its value has a character a header cannot carry"))?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }
        let client = reqwest::Client::builder()
            // The whole call: connecting, sending, and reading the body to its end, so a
            // server that sends its headers and then stalls or trickles is cut off too.
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .default_headers(headers)
            // Enough idle connections for a few hundred calls in flight.
            .pool_max_idle_per_host(1024)
            // A redirect would carry `--header` values (reqwest drops only Authorization) to
            // another host, perhaps over plain http: an endpoint that redirects is an error.
            .redirect(reqwest::redirect::Policy::none())
            // The runner retries, within its budget; reqwest's own layer would otherwise
            // copy every request's headers in case it wanted to send it again.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()
            .map_err(|e| OpenAiError::Client(scrub(&secrets, &error_chain(e))))?;
        let chat_urls = settings
            .base_urls
            .iter()
            .map(|base| {
                let shown = base.join("chat/completions");
                let parsed = reqwest::Url::parse(shown.expose_secret()).map_err(|e| {
                    OpenAiError::Client(format!("cannot parse the URL {shown}: {e}"))
                })?;
                Ok(ChatUrl { shown, parsed })
            })
            .collect::<Result<Vec<_>, OpenAiError>>()?;
        Ok(Endpoint {
            client,
            settings,
            chat_urls,
            next_base: AtomicUsize::new(0),
            secrets,
        })
    }

    /// A request for `messages` with the settings' model, sampling and reply format, asking
    /// for the reply's log-probabilities when `with_logprobs`.
    fn chat_request<M: Serialize>(&self, messages: M, with_logprobs: bool) -> ChatRequest<'_, M> {
        let settings = &self.settings;
        ChatRequest {
            model: &settings.model,
            messages,
            temperature: settings.temperature,
            max_tokens: settings.max_tokens,
            response_format: settings.json_mode.then_some(JSON_OBJECT),
            logprobs: with_logprobs.then_some(true),
            top_logprobs: with_logprobs.then_some(TOP_LOGPROBS),
        }
    }

    /// A request body for `messages`, without `logprobs`.
    fn chat_body(&self, messages: serde_json::Value) -> serde_json::Value {
        // A `Value` and plain data: serializing them cannot fail.
        serde_json::to_value(self.chat_request(messages, false)).unwrap_or_default()
    }

    fn redact(&self, text: &str) -> String {
        scrub(&self.secrets, text)
    }

    fn insecure_credentials_warning(&self) -> Option<String> {
        let s = &self.settings;
        let key = s.api_key.as_ref().is_some_and(|ApiKey(k)| !k.is_empty());
        let exposed: Vec<&SafeUrl> = s
            .base_urls
            .iter()
            .filter(|u| u.is_plain_http() && !u.is_loopback())
            .filter(|u| key || !s.headers.is_empty() || u.has_credentials())
            .collect();
        if exposed.is_empty() {
            return None;
        }
        let mut what = Vec::new();
        if key {
            what.push("the API key".to_string());
        }
        if !s.headers.is_empty() {
            let names: Vec<&str> = s.headers.iter().map(|h| h.name.as_str()).collect();
            what.push(format!("the header(s) {}", names.join(", ")));
        }
        if exposed.iter().any(|u| u.has_credentials()) {
            what.push("the credentials in the URL".to_string());
        }
        let urls: Vec<String> = exposed.iter().map(|u| u.to_string()).collect();
        Some(format!(
            "{} will be sent unencrypted over plain http:// to {}; use https://, \
             or a tunnel to a loopback address",
            what.join(", "),
            urls.join(" ")
        ))
    }

    /// The chat-completions URL of the next base URL in turn.
    fn next_chat_url(&self) -> &ChatUrl {
        let i = self.next_base.fetch_add(1, Ordering::Relaxed) % self.chat_urls.len();
        &self.chat_urls[i]
    }

    /// Sends with the API key, if any; a request that gets no response is retryable.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &SafeUrl,
    ) -> Result<reqwest::Response, JudgeError> {
        if let Some(ApiKey(key)) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        request
            .send()
            .await
            .map_err(|e| self.transport_error(url, e))
    }

    /// The body, up to [`MAX_BODY_BYTES`]; a larger one is refused without being kept.
    /// The client's total timeout bounds how long this can take.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        url: &SafeUrl,
    ) -> Result<String, JudgeError> {
        let too_large = || JudgeError::Rejected {
            reason: format!(
                "the response from {url} is larger than the {} MiB limit ({MAX_BODY_BYTES} bytes)",
                MAX_BODY_BYTES >> 20
            ),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        // Valid UTF-8 (every well-behaved server) is taken as it is, without a copy.
        Ok(String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// A request that got no (complete) response. reqwest's own text names the URL with
    /// its secrets, so it is dropped for ours, redacted; the cause chain ("connection
    /// refused") is kept, and the whole text scrubbed.
    fn transport_error(&self, url: &SafeUrl, error: reqwest::Error) -> JudgeError {
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        JudgeError::Unavailable {
            reason: self.redact(&format!("{kind}: {url}: {}", error_chain(error))),
            retry_after: None,
        }
    }

    /// Posts `body` and reads the whole response: its status, the wait it asked for, and
    /// its body.
    async fn post(
        &self,
        url: &ChatUrl,
        body: Vec<u8>,
    ) -> Result<(reqwest::StatusCode, Option<Duration>, String), JudgeError> {
        let request = self
            .client
            .post(url.parsed.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let url = &url.shown;
        let response = self.send(request, url).await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let text = self.read_body(response, url).await?;
        Ok((status, retry_after, text))
    }

    /// One chat call with `body` on the next base URL: the whole exchange, classified.
    async fn chat(&self, body: &serde_json::Value) -> Result<Completion, JudgeError> {
        let url = self.next_chat_url();
        // A `Value` serializes infallibly.
        let body = serde_json::to_vec(body).unwrap_or_default();
        let (status, retry_after, text) = self.post(url, body).await?;
        self.completion(&url.shown, status, retry_after, &text)
    }

    /// A response read as a chat completion: an error status classified (429 throttled;
    /// 408 and 5xx unavailable, worth a retry; any other rejected), a body that is not a
    /// completion unavailable, and everything the server says scrubbed of our secrets.
    fn completion(
        &self,
        url: &SafeUrl,
        status: reqwest::StatusCode,
        retry_after: Option<Duration>,
        body: &str,
    ) -> Result<Completion, JudgeError> {
        if !status.is_success() {
            let reason = self.redact(&format!(
                "HTTP {} from {url}: {}",
                status.as_u16(),
                snippet(&self.redact(body))
            ));
            return Err(match status.as_u16() {
                429 => JudgeError::Throttled {
                    reason,
                    retry_after,
                },
                408 | 500..=599 => JudgeError::Unavailable {
                    reason,
                    retry_after,
                },
                _ => JudgeError::Rejected { reason },
            });
        }
        let parsed: ChatResponse =
            serde_json::from_str(body).map_err(|e| JudgeError::Unavailable {
                // serde's message may quote a piece of the body too.
                reason: self.redact(&format!(
                    "malformed response from {url}: {e}: {}",
                    snippet(&self.redact(body))
                )),
                retry_after: None,
            })?;
        let Some((content, logprobs)) = parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| Some((c.message.content?, c.logprobs)))
        else {
            return Err(JudgeError::Unavailable {
                reason: format!("response from {url} has no choices or no message content"),
                retry_after: None,
            });
        };
        Ok(Completion {
            content: self.redact(&content),
            logprobs,
            usage: parsed.usage.map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
            model: parsed.model.map(|m| self.redact(&m)),
        })
    }

    /// The settings every judge of this endpoint records in `run.toml`: where, which model,
    /// how it samples, never a secret (the key's variable name and header names only).
    fn info_settings(&self) -> BTreeMap<String, String> {
        let s = &self.settings;
        let mut settings = BTreeMap::from([
            (
                "base_urls".to_string(),
                s.base_urls
                    .iter()
                    .map(SafeUrl::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("model".to_string(), s.model.clone()),
            ("temperature".to_string(), s.temperature.to_string()),
            ("max_tokens".to_string(), s.max_tokens.to_string()),
            ("json_mode".to_string(), s.json_mode.to_string()),
            ("timeout_s".to_string(), s.timeout.as_secs_f64().to_string()),
        ]);
        if let Some(env) = &s.api_key_env {
            settings.insert("api_key_env".to_string(), env.clone());
        }
        if !s.headers.is_empty() {
            let names: Vec<&str> = s.headers.iter().map(|h| h.name.as_str()).collect();
            settings.insert("header_names".to_string(), names.join(" "));
        }
        settings
    }

    /// `GET /models` on every base URL: a wrong URL or a dead replica fails the run in
    /// seconds. A server without that route (404/405) is up, which is all we ask.
    async fn health(&self) -> Result<(), JudgeError> {
        for base in &self.settings.base_urls {
            let url = base.join("models");
            let response = self
                .send(self.client.get(url.expose_secret()), &url)
                .await?;
            let status = response.status().as_u16();
            if status == 401 || status == 403 {
                return Err(JudgeError::Rejected {
                    reason: format!("HTTP {status} from {url}: check the API key"),
                });
            }
            if status >= 500 {
                return Err(JudgeError::Unavailable {
                    reason: format!("HTTP {status} from {url}"),
                    retry_after: None,
                });
            }
        }
        Ok(())
    }

    /// The base URLs in full (secrets and all) for a cache key, which keeps only a digest:
    /// two endpoints may serve different weights under one model name.
    fn cache_urls(&self) -> Vec<&str> {
        self.settings
            .base_urls
            .iter()
            .map(SafeUrl::expose_secret)
            .collect()
    }
}

impl Judge for OpenAiJudge {
    fn info(&self) -> JudgeInfo {
        let mut settings = self.endpoint.info_settings();
        settings.insert(
            "logprobs".to_string(),
            self.endpoint.settings.logprobs.to_string(),
        );
        settings.insert("template".to_string(), self.template.name().to_string());
        JudgeInfo {
            name: "openai".to_string(),
            prompt_sha256: Some(self.template.sha256().to_string()),
            settings,
        }
    }

    /// `GET /models` on every base URL: a wrong URL or a dead replica fails the run in
    /// seconds. A server without that route (404/405) is up, which is all we ask.
    fn health(&self) -> BoxFuture<'_, Result<(), JudgeError>> {
        Box::pin(self.endpoint.health())
    }

    fn cache_key(&self, example: &Example) -> Option<String> {
        // The key covers every byte that shapes the reply; the URLs are included because
        // two endpoints may serve different weights under one model name. They go in whole
        // (only a digest of them is kept), as they always have, so old caches still hit.
        let key = json!({
            "judge": "openai",
            "base_urls": self.endpoint.cache_urls(),
            "body": self.request_body(example),
            "template_sha256": self.template.sha256(),
        });
        let digest = Sha256::digest(key.to_string().as_bytes());
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// About four characters per token for English text (no tokenizer for an arbitrary
    /// remote model is at hand), and every reply as long as `max_tokens` allows.
    fn estimate(&self, example: &Example) -> Option<Estimate> {
        let chars = self.template.render(example).chars().count() as u64;
        Some(Estimate {
            calls: 1,
            usage: Usage {
                prompt_tokens: chars.div_ceil(4),
                completion_tokens: u64::from(self.endpoint.settings.max_tokens),
            },
        })
    }

    fn notes(&self) -> Vec<String> {
        if self.logprobs_disabled() {
            vec![
                "the server rejected `logprobs`, so this run has no p_fail (judge confidence) \
                 for the calls after that; pass --no-logprobs to skip the rejected first try"
                    .to_string(),
            ]
        } else {
            Vec::new()
        }
    }

    fn judge<'a>(&'a self, example: &'a Example) -> BoxFuture<'a, Result<Reply, JudgeError>> {
        Box::pin(self.call(example))
    }
}

/// The strings to scrub, longest first (so a secret containing another goes whole): the
/// API key, each header value (and, for `Bearer xyz`-style values, the part after the
/// scheme word), and each base URL's secrets, each also as a JSON body quoting it may
/// spell it ([`json_spellings`]).
fn collect_secrets(settings: &OpenAiSettings) -> Vec<String> {
    let mut secrets: Vec<String> = Vec::new();
    let mut add = |value: &str| {
        for value in [value, value.trim()] {
            for spelling in std::iter::once(value.to_string()).chain(json_spellings(value)) {
                if spelling.chars().count() >= SafeUrl::MIN_SECRET_CHARS
                    && !secrets.contains(&spelling)
                {
                    secrets.push(spelling);
                }
            }
        }
    };
    if let Some(ApiKey(key)) = &settings.api_key {
        add(key);
    }
    for header in &settings.headers {
        add(&header.value);
        if let Some((_, credential)) = header.value.trim().split_once(char::is_whitespace) {
            add(credential);
        }
    }
    for url in &settings.base_urls {
        for secret in url.secrets() {
            add(&secret);
        }
    }
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets
}

/// How an error body that quotes `secret` inside a JSON string may spell it, where that
/// differs from the secret: escaped as serde and most servers do (`"`, `\`, control
/// characters), with `/` as `\/` as well (PHP, some Java), with every non-ASCII character
/// as `\uXXXX` (Python's `json.dumps`), and with `<`, `>`, `&` as `\u003c`, `\u003e`,
/// `\u0026` (Go's `encoding/json`).
fn json_spellings(secret: &str) -> Vec<String> {
    // A string always serializes; the quotes around it are not part of the spelling.
    let quoted = serde_json::to_string(secret).unwrap_or_default();
    let escaped = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(secret)
        .to_string();
    let mut ascii = String::with_capacity(escaped.len());
    for c in escaped.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    let go = escaped
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let slashes = escaped.replace('/', "\\/");
    let mut spellings = Vec::new();
    for spelling in [escaped, ascii, go, slashes] {
        if spelling != secret && !spellings.contains(&spelling) {
            spellings.push(spelling);
        }
    }
    spellings
}

fn scrub(secrets: &[String], text: &str) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "***");
        }
    }
    text
}

/// An error's text without reqwest's URL, followed by each of its causes not already in
/// it: "error sending request: client error (Connect): tcp connect error: Connection
/// refused (os error 111)".
fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// How many alternatives per token are asked for with `logprobs`; 5 is the most some
/// servers allow, and PASS or FAIL is nearly always among the first two.
const TOP_LOGPROBS: u32 = 5;

/// A 400 or 422 whose body names the `logprobs` (or `top_logprobs`) parameter: perhaps the
/// server does not do them, or not this many (the body may also just quote the request).
fn rejects_logprobs(status: reqwest::StatusCode, body: &str) -> bool {
    matches!(status.as_u16(), 400 | 422) && body.to_ascii_lowercase().contains("logprob")
}

fn snippet(text: &str) -> String {
    const MAX: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// A chat-completions request body, borrowed from the settings (see
/// [`Endpoint::chat_request`]).
#[derive(Serialize)]
struct ChatRequest<'a, M> {
    model: &'a str,
    messages: M,
    temperature: f64,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<u32>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

impl ChatMessage<'_> {
    fn user(content: &str) -> ChatMessage<'_> {
        ChatMessage {
            role: "user",
            content,
        }
    }
}

#[derive(Serialize, Clone, Copy)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

const JSON_OBJECT: ResponseFormat = ResponseFormat {
    kind: "json_object",
};

#[derive(Debug, Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    model: Option<String>,
    usage: Option<ChatUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Message,
    /// Read leniently by [`confidence::tokens`]: whatever shape it has, it never fails
    /// the reply.
    #[serde(default)]
    logprobs: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[cfg(test)]
mod tests;
