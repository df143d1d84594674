//! A judge for any OpenAI-compatible `/v1/chat/completions` endpoint: OpenAI itself, vLLM,
//! llama.cpp's server, TGI. One user message rendered from a prompt template, greedy by
//! default, the reply parsed with the lenient verdict parser.
//!
//! It makes exactly one HTTP request per call and classifies what went wrong (worth a
//! retry or not, and how long the server asked us to wait). It does not retry, cache or
//! limit concurrency: the runner does, for every judge alike.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use halubench_core::{Example, JudgeInfo, Usage};
use halubench_judge::{BoxFuture, Judge, JudgeError, PromptTemplate, Reply, parse_verdict};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

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

/// Everything that shapes a request.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// One or more base URLs ending in `/v1`; calls go round-robin across them.
    pub base_urls: Vec<String>,
    pub model: String,
    pub api_key: Option<ApiKey>,
    /// The environment variable the key came from, recorded in `run.toml` instead of it.
    pub api_key_env: Option<String>,
    pub temperature: f64,
    pub max_tokens: u32,
    /// Ask for `response_format: {"type": "json_object"}`.
    pub json_mode: bool,
    /// Extra request headers (name, value). Only the names are ever recorded.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

impl OpenAiSettings {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> OpenAiSettings {
        OpenAiSettings {
            base_urls: vec![base_url.into()],
            model: model.into(),
            api_key: None,
            api_key_env: None,
            temperature: 0.0,
            max_tokens: 600,
            json_mode: false,
            headers: Vec::new(),
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenAiError {
    #[error("invalid base URL {url:?}: it must start with http:// or https://")]
    BaseUrl { url: String },
    #[error("no base URL given")]
    NoBaseUrl,
    #[error("invalid header {name:?}: {reason}")]
    Header { name: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

pub struct OpenAiJudge {
    client: reqwest::Client,
    settings: OpenAiSettings,
    template: PromptTemplate,
    next_base: AtomicUsize,
}

impl fmt::Debug for OpenAiJudge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiJudge")
            .field("settings", &self.settings)
            .field("template", &self.template.name())
            .finish_non_exhaustive()
    }
}

impl OpenAiJudge {
    pub fn new(
        mut settings: OpenAiSettings,
        template: PromptTemplate,
    ) -> Result<OpenAiJudge, OpenAiError> {
        if settings.base_urls.is_empty() {
            return Err(OpenAiError::NoBaseUrl);
        }
        for url in &mut settings.base_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(OpenAiError::BaseUrl { url: url.clone() });
            }
            *url = url.trim_end_matches('/').to_string();
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &settings.headers {
            let invalid = |reason: String| OpenAiError::Header {
                name: name.clone(),
                reason,
            };
            let header_name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid(e.to_string()))?;
            let mut header_value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|e| invalid(e.to_string()))?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .default_headers(headers)
            // Enough idle connections for a few hundred calls in flight.
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| OpenAiError::Client(e.to_string()))?;
        Ok(OpenAiJudge {
            client,
            settings,
            template,
            next_base: AtomicUsize::new(0),
        })
    }

    /// The request body for an example: what is sent, and what the response cache keys on.
    pub fn request_body(&self, example: &Example) -> serde_json::Value {
        let mut body = json!({
            "model": self.settings.model,
            "messages": [{"role": "user", "content": self.template.render(example)}],
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        });
        if self.settings.json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        body
    }

    /// Replaces the API key wherever a server echoed it back.
    fn redact(&self, text: &str) -> String {
        match &self.settings.api_key {
            Some(ApiKey(key)) if !key.is_empty() => text.replace(key.as_str(), "***"),
            _ => text.to_string(),
        }
    }

    fn next_base_url(&self) -> &str {
        let i = self.next_base.fetch_add(1, Ordering::Relaxed) % self.settings.base_urls.len();
        &self.settings.base_urls[i]
    }

    /// Sends with the API key, if any; a request that gets no response is retryable.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, JudgeError> {
        if let Some(ApiKey(key)) = &self.settings.api_key {
            request = request.bearer_auth(key);
        }
        request.send().await.map_err(|e| transport_error(url, &e))
    }

    async fn call(&self, example: &Example) -> Result<Reply, JudgeError> {
        let url = format!("{}/chat/completions", self.next_base_url());
        let request = self.client.post(&url).json(&self.request_body(example));
        let response = self.send(request, &url).await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let body = response
            .text()
            .await
            .map_err(|e| transport_error(&url, &e))?;
        if !status.is_success() {
            let reason = format!(
                "HTTP {} from {url}: {}",
                status.as_u16(),
                snippet(&self.redact(&body))
            );
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
            serde_json::from_str(&body).map_err(|e| JudgeError::Unavailable {
                reason: format!(
                    "malformed response from {url}: {e}: {}",
                    snippet(&self.redact(&body))
                ),
                retry_after: None,
            })?;
        let Some(content) = parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
        else {
            return Err(JudgeError::Unavailable {
                reason: format!(
                    "response from {} has no choices or no message content",
                    redact_url(&url)
                ),
                retry_after: None,
            });
        };
        let raw = self.redact(&content);
        let verdict = parse_verdict(&raw);
        Ok(Reply {
            verdict: verdict.verdict,
            invalid_reason: verdict.invalid.map(|r| r.as_str().to_string()),
            raw,
            usage: parsed.usage.map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
            model: parsed.model,
        })
    }
}

impl Judge for OpenAiJudge {
    fn info(&self) -> JudgeInfo {
        let s = &self.settings;
        let mut settings = BTreeMap::from([
            (
                "base_urls".to_string(),
                s.base_urls
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("model".to_string(), s.model.clone()),
            ("temperature".to_string(), s.temperature.to_string()),
            ("max_tokens".to_string(), s.max_tokens.to_string()),
            ("json_mode".to_string(), s.json_mode.to_string()),
            ("timeout_s".to_string(), s.timeout.as_secs_f64().to_string()),
            ("template".to_string(), self.template.name().to_string()),
        ]);
        if let Some(env) = &s.api_key_env {
            settings.insert("api_key_env".to_string(), env.clone());
        }
        if !s.headers.is_empty() {
            let names: Vec<&str> = s.headers.iter().map(|(n, _)| n.as_str()).collect();
            settings.insert("header_names".to_string(), names.join(" "));
        }
        JudgeInfo {
            name: "openai".to_string(),
            prompt_sha256: Some(self.template.sha256().to_string()),
            settings,
        }
    }

    /// `GET /models` on every base URL: a wrong URL or a dead replica fails the run in
    /// seconds. A server without that route (404/405) is up, which is all we ask.
    fn health(&self) -> BoxFuture<'_, Result<(), JudgeError>> {
        Box::pin(async move {
            for base in &self.settings.base_urls {
                let url = format!("{base}/models");
                let response = self.send(self.client.get(&url), &url).await?;
                let status = response.status().as_u16();
                if status == 401 || status == 403 {
                    return Err(JudgeError::Rejected {
                        reason: format!(
                            "HTTP {status} from {}: check the API key",
                            redact_url(&url)
                        ),
                    });
                }
                if status >= 500 {
                    return Err(JudgeError::Unavailable {
                        reason: format!("HTTP {status} from {}", redact_url(&url)),
                        retry_after: None,
                    });
                }
            }
            Ok(())
        })
    }

    fn cache_key(&self, example: &Example) -> Option<String> {
        // The key covers every byte that shapes the reply; the URLs are included because
        // two endpoints may serve different weights under one model name.
        let key = json!({
            "judge": "openai",
            "base_urls": self.settings.base_urls,
            "body": self.request_body(example),
            "template_sha256": self.template.sha256(),
        });
        let digest = Sha256::digest(key.to_string().as_bytes());
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// About four characters per token for English text (no tokenizer for an arbitrary
    /// remote model is at hand), and every reply as long as `max_tokens` allows.
    fn estimate_usage(&self, example: &Example) -> Option<Usage> {
        let chars = self.template.render(example).chars().count() as u64;
        Some(Usage {
            prompt_tokens: chars.div_ceil(4),
            completion_tokens: u64::from(self.settings.max_tokens),
        })
    }

    fn judge<'a>(&'a self, example: &'a Example) -> BoxFuture<'a, Result<Reply, JudgeError>> {
        Box::pin(self.call(example))
    }
}

/// A base URL as it may be recorded: credentials in it (`https://user:key@host/v1`, a
/// `?api-key=` query) become `***`, since run.toml and reports are shared.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (rest, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?***"),
        None => (rest, ""),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{scheme}{host}{path}{query}")
}

#[cfg(test)]
mod redact_tests {
    use super::redact_url;

    #[test]
    fn credentials_in_a_base_url_are_not_recorded() {
        assert_eq!(redact_url("http://gpu1:8000/v1"), "http://gpu1:8000/v1");
        assert_eq!(
            redact_url("https://me:sk-123@proxy.example/v1"),
            "https://***@proxy.example/v1"
        );
        assert_eq!(
            redact_url("https://proxy.example/v1?api-key=sk-123"),
            "https://proxy.example/v1?***"
        );
    }
}

fn transport_error(url: &str, error: &reqwest::Error) -> JudgeError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's messages name the URL but never the headers; the URL is redacted like the
    // recorded one, so a key inside it cannot reach a journal either.
    let shown = redact_url(url);
    JudgeError::Unavailable {
        reason: format!(
            "{kind}: {shown}: {}",
            error.to_string().replace(url, &shown)
        ),
        retry_after: None,
    }
}

fn snippet(text: &str) -> String {
    const MAX: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

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
