//! Tests against a tiny HTTP server on 127.0.0.1 started by each test: what comes back
//! from a server (or from a failed connection) must never carry a secret we sent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use halubench_core::Label;

use super::*;

const KEY: &str = "sk-test-KEY-1234567890";
const HEADER_VALUE: &str = "hdr-SECRET-value-42";
const PASSWORD: &str = "pw-SECRET-9876";
const QUERY_VALUE: &str = "q-SECRET-5555";
/// `Basic` token reqwest builds from `user:pw-SECRET-9876@`.
const BASIC_TOKEN: &str = "dXNlcjpwdy1TRUNSRVQtOTg3Ng==";
const SECRETS: [&str; 5] = [KEY, HEADER_VALUE, PASSWORD, QUERY_VALUE, BASIC_TOKEN];

fn assert_clean(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret:?} leaked: {text}");
    }
}

fn assert_error_clean(error: &JudgeError) {
    assert_clean(&error.to_string());
    assert_clean(&format!("{error:?}"));
}

type Handler = dyn Fn(&str, &mut TcpStream) + Send + Sync;

/// A server on 127.0.0.1 that hands each request (head and body, as text) to `handler`,
/// one thread per connection; `requests` keeps every request it saw.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(handler: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    seen.lock().expect("lock").push(request.clone());
                    handler(&request, &mut stream);
                });
            }
        });
        Server { port, requests }
    }

    /// `http://user:PASSWORD@127.0.0.1:PORT{path}?api-key=QUERY_VALUE`
    fn base_url(&self, path: &str) -> SafeUrl {
        let text = format!(
            "http://user:{PASSWORD}@127.0.0.1:{}{path}?api-key={QUERY_VALUE}",
            self.port
        );
        SafeUrl::parse(&text).expect("a valid URL")
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(String::from_utf8_lossy(&data).to_string());
            }
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
}

/// The request echoed back: the request line, the credential-bearing headers
/// (`authorization`, `x-*`), the other headers, then the body. Everything is there; the
/// order only puts the secrets inside the 300 characters an error message quotes.
fn echo(request: &str) -> String {
    let (head, body) = request.split_once("\r\n\r\n").unwrap_or((request, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let (first, rest): (Vec<&str>, Vec<&str>) = lines.partition(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("authorization") || l.starts_with("x-")
    });
    format!(
        "{request_line}\n{}\n{}\n\n{body}",
        first.join("\n"),
        rest.join("\n")
    )
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn example() -> Example {
    Example {
        id: "ex-1".to_string(),
        task: "DROP".to_string(),
        passage: "The sky is blue.".to_string(),
        question: "What colour is the sky?".to_string(),
        answer: "Blue.".to_string(),
        label: Label::Pass,
    }
}

fn settings_for(base_urls: Vec<SafeUrl>) -> OpenAiSettings {
    let mut settings = OpenAiSettings::new(base_urls[0].clone(), "test-model");
    settings.base_urls = base_urls;
    settings.api_key = Some(ApiKey::new(KEY));
    settings.api_key_env = Some("TEST_KEY".to_string());
    settings.headers = vec![Header::new("X-Api-Key", HEADER_VALUE)];
    settings.timeout = Duration::from_secs(10);
    settings
}

fn judge_for(server: &Server) -> OpenAiJudge {
    judge_with(settings_for(vec![server.base_url("/v1")]))
}

fn judge_with(settings: OpenAiSettings) -> OpenAiJudge {
    OpenAiJudge::new(settings, PromptTemplate::lynx()).expect("a judge")
}

async fn judge_error(judge: &OpenAiJudge) -> JudgeError {
    match judge.judge(&example()).await {
        Ok(reply) => panic!("expected an error, got {reply:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn an_http_401_echoing_the_request_leaks_nothing() {
    let server = Server::start(|request, stream| {
        respond(stream, "401 Unauthorized", "", &echo(request));
    });
    let judge = judge_for(&server);
    let error = judge_error(&judge).await;
    assert!(matches!(error, JudgeError::Rejected { .. }), "{error:?}");
    assert_error_clean(&error);
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "HTTP 401 from http://***@127.0.0.1:{}/v1/chat/completions?api-key=***",
            server.port
        )),
        "{text}"
    );
    // The secrets were sent, and inside what the message quotes: the test is not vacuous.
    let requests = server.requests();
    let sent = echo(&requests[0]);
    let quoted: String = sent.trim().chars().take(300).collect();
    for secret in [KEY, HEADER_VALUE, QUERY_VALUE, BASIC_TOKEN] {
        assert!(quoted.contains(secret), "{secret} not in {quoted}");
    }
    assert!(text.matches("***").count() >= 5, "{text}");
    // The path goes before the query.
    assert!(
        requests[0].starts_with(&format!(
            "POST /v1/chat/completions?api-key={QUERY_VALUE} HTTP/1.1\r\n"
        )),
        "{}",
        requests[0]
    );
}

#[tokio::test]
async fn an_http_500_echoing_the_request_leaks_nothing() {
    let server = Server::start(|request, stream| {
        respond(stream, "500 Internal Server Error", "", &echo(request));
    });
    let error = judge_error(&judge_for(&server)).await;
    assert!(matches!(error, JudgeError::Unavailable { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_error_clean(&error);
    assert!(error.to_string().contains("HTTP 500 from"), "{error}");
}

#[tokio::test]
async fn a_non_json_200_echoing_the_request_leaks_nothing() {
    let server = Server::start(|request, stream| {
        respond(
            stream,
            "200 OK",
            "Content-Type: text/plain\r\n",
            &echo(request),
        );
    });
    let error = judge_error(&judge_for(&server)).await;
    assert!(matches!(error, JudgeError::Unavailable { .. }), "{error:?}");
    assert_error_clean(&error);
    assert!(
        error.to_string().contains("malformed response from"),
        "{error}"
    );
}

#[tokio::test]
async fn a_json_error_quoting_a_secret_leaks_nothing() {
    // serde's message quotes the string it did not expect.
    let server = Server::start(|_, stream| {
        let body = json!({ "choices": format!("{KEY} {HEADER_VALUE} {QUERY_VALUE}") });
        respond(stream, "200 OK", "", &body.to_string());
    });
    let error = judge_error(&judge_for(&server)).await;
    assert_error_clean(&error);
    assert!(error.to_string().contains("invalid type"), "{error}");
}

#[tokio::test]
async fn reply_content_and_model_echoing_secrets_are_scrubbed() {
    let server = Server::start(|request, stream| {
        // The request's head only: the prompt in its body could hold a SCORE of its own.
        let head = request.split("\r\n\r\n").next().unwrap_or_default();
        let body = json!({
            "model": format!("model-{KEY}"),
            "choices": [{"message": {"content": format!(
                "{{\"REASONING\": [\"{PASSWORD} {HEADER_VALUE} {QUERY_VALUE}\"], \"SCORE\": \"PASS\"}} {}",
                echo(head)
            )}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3},
        });
        respond(
            stream,
            "200 OK",
            "Content-Type: application/json\r\n",
            &body.to_string(),
        );
    });
    let reply = judge_for(&server).judge(&example()).await.expect("a reply");
    assert_clean(&reply.raw);
    assert_clean(&format!("{reply:?}"));
    assert_eq!(reply.model.as_deref(), Some("model-***"));
    assert!(reply.raw.contains("*** *** ***"), "{}", reply.raw);
    assert_eq!(reply.verdict, halubench_core::Verdict::Pass);
    // The server ignored `logprobs`: no p_fail, and nothing is switched off.
    assert_eq!(reply.p_fail, None);
    assert!(!judge_for(&server).logprobs_disabled());
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 3
        })
    );
}

fn stream_zeros(stream: &mut TcpStream, total: usize) {
    let block = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        if stream.write_all(&block).is_err() {
            return;
        }
        sent += block.len();
    }
}

#[tokio::test]
async fn a_64_mib_body_is_rejected_quickly() {
    const SIZE: usize = 64 * 1024 * 1024;
    // With a Content-Length: refused before reading.
    let server = Server::start(|_, stream| {
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n");
        if stream.write_all(head.as_bytes()).is_ok() {
            stream_zeros(stream, SIZE);
        }
    });
    let started = Instant::now();
    let error = judge_error(&judge_for(&server)).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, JudgeError::Rejected { .. }), "{error:?}");
    assert!(error.to_string().contains("8 MiB"), "{error}");
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
    assert_error_clean(&error);

    // Without one (the body ends when the connection closes): cut off at the limit.
    let server = Server::start(|_, stream| {
        let head = "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n";
        if stream.write_all(head.as_bytes()).is_ok() {
            stream_zeros(stream, SIZE);
        }
    });
    let started = Instant::now();
    let error = judge_error(&judge_for(&server)).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, JudgeError::Rejected { .. }), "{error:?}");
    assert_error_clean(&error);
}

#[tokio::test]
async fn a_refused_connection_names_the_redacted_url_and_the_cause() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let url = SafeUrl::parse(&format!(
        "http://user:{PASSWORD}@127.0.0.1:{port}/v1?api-key={QUERY_VALUE}"
    ))
    .expect("a URL");
    let judge = judge_with(settings_for(vec![url]));
    let error = judge_error(&judge).await;
    assert!(matches!(error, JudgeError::Unavailable { .. }), "{error:?}");
    assert_error_clean(&error);
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "http://***@127.0.0.1:{port}/v1/chat/completions?api-key=***"
        )),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    // health() fails the same way.
    let error = judge.health().await.expect_err("nothing listens");
    assert_error_clean(&error);
    assert!(
        error.to_string().contains("/v1/models?api-key=***"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_stalls_after_its_headers_is_cut_off_by_the_timeout() {
    let server = Server::start(|_, stream| {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{";
        let _ = stream.write_all(head.as_bytes());
        std::thread::sleep(Duration::from_secs(10));
    });
    let mut settings = settings_for(vec![server.base_url("/v1")]);
    settings.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let error = judge_error(&judge_with(settings)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(error, JudgeError::Unavailable { .. }), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert_error_clean(&error);
}

#[tokio::test]
async fn retry_after_is_read_in_every_form() {
    let server = Server::start(|request, stream| {
        let value = if request.contains("/a/") {
            "0.2"
        } else if request.contains("/b/") {
            "Sun, 06 Nov 1994 08:49:37 GMT"
        } else {
            "1e20"
        };
        let status = if request.contains("/a/") {
            "429 Too Many Requests"
        } else {
            "503 Service Unavailable"
        };
        respond(stream, status, &format!("Retry-After: {value}\r\n"), "busy");
    });
    let judge = judge_with(settings_for(vec![
        server.base_url("/a"),
        server.base_url("/b"),
        server.base_url("/c"),
    ]));
    let error = judge_error(&judge).await;
    assert!(error.is_throttled(), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_millis(200)));
    let error = judge_error(&judge).await;
    assert!(matches!(error, JudgeError::Unavailable { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::ZERO));
    let error = judge_error(&judge).await;
    assert_eq!(error.retry_after(), Some(Duration::MAX));
    // Round-robin over the three base URLs.
    let lines: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.lines().next().map(str::to_string))
        .collect();
    assert_eq!(
        lines,
        ["a", "b", "c"]
            .map(|p| format!("POST /{p}/chat/completions?api-key={QUERY_VALUE} HTTP/1.1"))
    );
}

#[tokio::test]
async fn health_asks_models_and_names_the_redacted_url() {
    let server = Server::start(|request, stream| {
        if request.contains("/bad/") {
            respond(stream, "401 Unauthorized", "", &echo(request));
        } else {
            respond(stream, "404 Not Found", "", "");
        }
    });
    let judge = judge_with(settings_for(vec![server.base_url("/v1")]));
    judge.health().await.expect("a 404 is up");
    assert!(server.requests()[0].starts_with(&format!(
        "GET /v1/models?api-key={QUERY_VALUE} HTTP/1.1\r\n"
    )));
    let judge = judge_with(settings_for(vec![server.base_url("/bad")]));
    let error = judge.health().await.expect_err("401");
    assert!(matches!(error, JudgeError::Rejected { .. }), "{error:?}");
    assert_error_clean(&error);
    assert!(
        error
            .to_string()
            .contains("HTTP 401 from http://***@127.0.0.1"),
        "{error}"
    );
}

fn offline_settings() -> OpenAiSettings {
    let url = SafeUrl::parse(&format!(
        "https://user:{PASSWORD}@proxy.example/v1?api-key={QUERY_VALUE}"
    ))
    .expect("a URL");
    settings_for(vec![url])
}

#[test]
fn debug_output_never_shows_a_secret() {
    let settings = offline_settings();
    let text = format!("{settings:?}");
    assert_clean(&text);
    assert!(
        text.contains("https://***@proxy.example/v1?api-key=***"),
        "{text}"
    );
    assert!(
        text.contains("Header { name: \"X-Api-Key\", value: *** }"),
        "{text}"
    );
    let text = format!("{settings:#?}");
    assert_clean(&text);
    let judge = judge_with(settings);
    assert_clean(&format!("{judge:?}"));
    assert_clean(&format!("{judge:#?}"));
}

#[test]
fn info_records_redacted_urls_and_header_names_only() {
    let mut settings = offline_settings();
    settings
        .base_urls
        .push(SafeUrl::parse("http://gpu1:8000/v1").expect("a URL"));
    let info = judge_with(settings).info();
    assert_eq!(info.name, "openai");
    assert_eq!(
        info.settings["base_urls"],
        "https://***@proxy.example/v1?api-key=*** http://gpu1:8000/v1"
    );
    assert_eq!(info.settings["header_names"], "X-Api-Key");
    assert_eq!(info.settings["api_key_env"], "TEST_KEY");
    assert_eq!(info.settings["model"], "test-model");
    assert_eq!(info.settings["timeout_s"], "10");
    assert_eq!(info.settings["logprobs"], "true");
    for key in ["temperature", "max_tokens", "json_mode", "template"] {
        assert!(info.settings.contains_key(key), "{key}");
    }
    for value in info.settings.values() {
        assert_clean(value);
    }
}

#[test]
fn cache_keys_hash_the_full_request() {
    let judge = judge_with(offline_settings());
    let key = judge.cache_key(&example()).expect("a key");
    assert_eq!(key.len(), 64);
    assert_clean(&key);
    assert_eq!(judge.cache_key(&example()), Some(key.clone()));
    // Another secret in the URL is another endpoint, as far as the cache knows.
    let mut settings = offline_settings();
    settings.base_urls =
        vec![SafeUrl::parse("https://user:other@proxy.example/v1?api-key=x").expect("a URL")];
    assert_ne!(
        judge_with(settings).cache_key(&example()),
        Some(key.clone())
    );
    // Unchanged from before SafeUrl: the exposed URLs go in as strings.
    let body = judge.request_body(&example());
    let expected = json!({
        "judge": "openai",
        "base_urls": [format!("https://user:{PASSWORD}@proxy.example/v1?api-key={QUERY_VALUE}")],
        "body": body,
        "template_sha256": PromptTemplate::lynx().sha256(),
    });
    let digest = Sha256::digest(expected.to_string().as_bytes());
    let expected: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(key, expected);
}

#[test]
fn the_body_sent_is_the_request_body_the_cache_keys_on() {
    let prompt = PromptTemplate::lynx().render(&example());
    // The body as cache keys have always been made of it.
    let expected = |json_mode: bool, logprobs: bool| {
        let mut body = json!({
            "model": "test-model",
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.3,
            "max_tokens": 300,
        });
        if json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        if logprobs {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(5);
        }
        body
    };
    for (json_mode, logprobs) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut settings = offline_settings();
        settings.json_mode = json_mode;
        settings.logprobs = logprobs;
        settings.temperature = 0.3;
        settings.max_tokens = 300;
        let judge = judge_with(settings);
        let body = judge.request_body(&example());
        assert_eq!(
            body,
            expected(json_mode, logprobs),
            "{json_mode} {logprobs}"
        );
        let sent: serde_json::Value =
            serde_json::from_slice(&judge.wire_body(&prompt, logprobs)).expect("JSON");
        assert_eq!(sent, body, "{json_mode} {logprobs}");
        // Once a server has rejected logprobs: the same body less those two fields.
        let sent: serde_json::Value =
            serde_json::from_slice(&judge.wire_body(&prompt, false)).expect("JSON");
        assert_eq!(sent, expected(json_mode, false), "{json_mode} {logprobs}");
    }
}

#[test]
fn the_scrubber_replaces_longest_secrets_first() {
    let url = SafeUrl::parse("https://proxy/v1?a=abcd&b=abcdefgh&c=xy").expect("a URL");
    let mut settings = OpenAiSettings::new(url, "m");
    settings.headers = vec![
        Header::new("Authorization", "Bearer tok-123456"),
        Header::new("X-Short", "ab"),
    ];
    let judge = judge_with(settings);
    assert_eq!(
        judge.redact("abcdefgh abcd xy Bearer tok-123456 / tok-123456 ab"),
        "*** *** xy *** / *** ab"
    );
    assert_eq!(judge.redact("nothing here"), "nothing here");
}

#[test]
fn secrets_are_scrubbed_as_json_bodies_spell_them() {
    // The query value percent-decodes to `café/token`.
    let url = SafeUrl::parse("https://proxy/v1?key=caf%C3%A9%2Ftoken").expect("a URL");
    let mut settings = OpenAiSettings::new(url, "m");
    settings.api_key = Some(ApiKey::new(r#"sk-"quoted"\back/slash"#));
    settings.headers = vec![Header::new("X-Api-Key", "a<b>&c-secret")];
    let judge = judge_with(settings);
    for echoed in [
        // serde_json, JavaScript, most servers.
        r#"sk-\"quoted\"\\back/slash"#,
        // With `/` escaped (PHP's json_encode).
        r#"sk-\"quoted\"\\back\/slash"#,
        // Go's encoding/json.
        r"a\u003cb\u003e\u0026c-secret",
        // Python's json.dumps.
        r"caf\u00e9/token",
    ] {
        let text = format!("{{\"error\": \"bad credential {echoed} given\"}}");
        assert_eq!(
            judge.redact(&text),
            "{\"error\": \"bad credential *** given\"}",
            "{echoed}"
        );
    }
}

#[test]
fn credentials_over_plain_http_to_another_host_warn_once() {
    let url = |text: &str| SafeUrl::parse(text).expect("a URL");
    let bare = |u: &str| OpenAiSettings::new(url(u), "m");

    // Nothing secret to send: no warning, even to another host.
    assert_eq!(
        judge_with(bare("http://gpu1:8000/v1")).insecure_credentials_warning(),
        None
    );
    // An API key over http to another host.
    let mut settings = bare("http://gpu1:8000/v1");
    settings.api_key = Some(ApiKey::new(KEY));
    settings.base_urls.push(url("https://secure.example/v1"));
    settings.base_urls.push(url("http://127.0.0.1:8000/v1"));
    let warning = judge_with(settings)
        .insecure_credentials_warning()
        .expect("a warning");
    assert!(warning.contains("the API key"), "{warning}");
    assert!(warning.contains("http://gpu1:8000/v1"), "{warning}");
    assert!(!warning.contains("secure.example"), "{warning}");
    assert!(!warning.contains("127.0.0.1"), "{warning}");
    assert!(!warning.contains('\n'), "{warning}");
    assert!(
        warning.starts_with("the API key"),
        "the caller adds `warning:`: {warning}"
    );
    // A header.
    let mut settings = bare("http://gpu1/v1");
    settings.headers = vec![Header::new("X-Api-Key", HEADER_VALUE)];
    let warning = judge_with(settings)
        .insecure_credentials_warning()
        .expect("a warning");
    assert!(warning.contains("X-Api-Key"), "{warning}");
    assert_clean(&warning);
    // Userinfo, and a query secret.
    for text in [
        format!("http://user:{PASSWORD}@gpu1/v1"),
        format!("http://gpu1/v1?api-key={QUERY_VALUE}"),
    ] {
        let warning = judge_with(bare(&text))
            .insecure_credentials_warning()
            .expect("a warning");
        assert!(warning.contains("the credentials in the URL"), "{warning}");
        assert_clean(&warning);
    }
    // https, or loopback over http: fine.
    for text in [
        format!("https://user:{PASSWORD}@gpu1/v1?api-key={QUERY_VALUE}"),
        format!("http://user:{PASSWORD}@localhost:8000/v1?api-key={QUERY_VALUE}"),
        format!("http://user:{PASSWORD}@[::1]:8000/v1"),
    ] {
        let mut settings = bare(&text);
        settings.api_key = Some(ApiKey::new(KEY));
        settings.headers = vec![Header::new("X-Api-Key", HEADER_VALUE)];
        assert_eq!(
            judge_with(settings).insecure_credentials_warning(),
            None,
            "{text}"
        );
    }
}

#[test]
fn construction_errors_carry_no_secret() {
    let mut settings = offline_settings();
    settings.headers = vec![Header::new("X-Api-Key", format!("{HEADER_VALUE}\n"))];
    let error = OpenAiJudge::new(settings, PromptTemplate::lynx()).expect_err("a bad value");
    assert!(matches!(&error, OpenAiError::Header { name, .. } if name == "X-Api-Key"));
    assert_clean(&error.to_string());
    assert_clean(&format!("{error:?}"));

    let mut settings = offline_settings();
    settings.headers = vec![Header::new("X Api Key", HEADER_VALUE)];
    let error = OpenAiJudge::new(settings, PromptTemplate::lynx()).expect_err("a bad name");
    assert_clean(&error.to_string());

    let mut settings = offline_settings();
    settings.base_urls.clear();
    assert!(matches!(
        OpenAiJudge::new(settings, PromptTemplate::lynx()),
        Err(OpenAiError::NoBaseUrl)
    ));

    let error: OpenAiError = SafeUrl::parse(&format!(
        "ftp://user:{PASSWORD}@host/v1?api-key={QUERY_VALUE}"
    ))
    .expect_err("ftp")
    .into();
    assert_eq!(
        error.to_string(),
        "invalid base URL \"ftp://***@host/v1?***\": it must start with http:// or https://"
    );
    assert_clean(&format!("{error:?}"));
}

#[test]
fn a_safe_url_serializes_redacted() {
    let url = SafeUrl::parse(&format!(
        "https://user:{PASSWORD}@proxy.example/v1?api-key={QUERY_VALUE}"
    ))
    .expect("a URL");
    assert_eq!(
        serde_json::to_string(&url).expect("json"),
        "\"https://***@proxy.example/v1?api-key=***\""
    );
}

/// The body of a request as JSON.
fn request_json(request: &str) -> serde_json::Value {
    let body = request.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).expect("a JSON body")
}

fn ok_json(stream: &mut TcpStream, body: &serde_json::Value) {
    respond(
        stream,
        "200 OK",
        "Content-Type: application/json\r\n",
        &body.to_string(),
    );
}

#[tokio::test]
async fn p_fail_is_read_from_the_verdict_tokens_logprobs() {
    let server = Server::start(|_, stream| {
        let alternatives = |pairs: &[(&str, f64)]| -> Vec<serde_json::Value> {
            pairs
                .iter()
                .map(|(t, l)| json!({"token": t, "logprob": l, "bytes": null}))
                .collect()
        };
        let tokens = json!([
            {"token": "{\"REASONING\": [\"It says so.\"], \"SCORE\":", "logprob": -0.01,
             "top_logprobs": alternatives(&[])},
            {"token": " \"F", "logprob": -0.1,
             "top_logprobs": alternatives(&[(" \"F", -0.1), (" \"P", -2.4), (" \"", -6.0)])},
            {"token": "AIL\"}", "logprob": -0.001,
             "top_logprobs": alternatives(&[("AIL\"}", -0.001)])},
        ]);
        let body = json!({
            "model": "test-model",
            "choices": [{
                "message": {"content": "{\"REASONING\": [\"It says so.\"], \"SCORE\": \"FAIL\"}"},
                "logprobs": {"content": tokens},
            }],
        });
        ok_json(stream, &body);
    });
    let judge = judge_for(&server);
    let reply = judge.judge(&example()).await.expect("a reply");
    assert_eq!(reply.verdict, halubench_core::Verdict::Fail);
    let expected = (-0.1_f64).exp() / ((-0.1_f64).exp() + (-2.4_f64).exp());
    let p_fail = reply.p_fail.expect("a p_fail");
    assert!((p_fail - expected).abs() < 1e-12, "{p_fail} != {expected}");
    assert!(!judge.logprobs_disabled());
    let sent = request_json(&server.requests()[0]);
    assert_eq!(sent["logprobs"], json!(true));
    assert_eq!(sent["top_logprobs"], json!(5));
}

#[tokio::test]
async fn a_server_rejecting_logprobs_is_asked_again_without_them_once() {
    let server = Server::start(|request, stream| {
        if request_json(request).get("logprobs").is_some() {
            let error = json!({"error": {"message": "logprobs is not supported", "code": 400}});
            respond(stream, "400 Bad Request", "", &error.to_string());
        } else {
            let body = json!({"choices": [{"message": {"content": "SCORE: PASS"}}]});
            ok_json(stream, &body);
        }
    });
    let judge = judge_for(&server);
    assert!(!judge.logprobs_disabled());
    let key = judge.cache_key(&example());
    let reply = judge.judge(&example()).await.expect("a reply");
    assert_eq!(reply.verdict, halubench_core::Verdict::Pass);
    assert_eq!(reply.p_fail, None);
    assert!(judge.logprobs_disabled());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(request_json(&requests[0])["top_logprobs"], json!(5));
    let retried = request_json(&requests[1]);
    assert!(retried.get("logprobs").is_none(), "{retried}");
    assert!(retried.get("top_logprobs").is_none(), "{retried}");
    assert_eq!(
        requests[1].lines().next(),
        requests[0].lines().next(),
        "the same URL"
    );
    // Later calls go without logprobs from the start; the cache key stays that of the
    // body the settings ask for, and info() records what was asked for.
    let reply = judge.judge(&example()).await.expect("a reply");
    assert_eq!(reply.p_fail, None);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(request_json(&requests[2]).get("logprobs").is_none());
    assert_eq!(judge.cache_key(&example()), key);
    assert_eq!(judge.info().settings["logprobs"], "true");
}

#[tokio::test]
async fn a_400_that_only_quotes_logprobs_does_not_turn_them_off() {
    // A prompt too long for the model, say, with the request quoted in the error: the
    // call without logprobs fails the same way, so they were not the problem.
    let server = Server::start(|request, stream| {
        let sent = request_json(request);
        let error = json!({"error": {"message": format!("prompt too long; request was {sent}")}});
        respond(stream, "400 Bad Request", "", &error.to_string());
    });
    let judge = judge_for(&server);
    let error = judge_error(&judge).await;
    assert!(matches!(error, JudgeError::Rejected { .. }), "{error:?}");
    assert!(error.to_string().contains("prompt too long"), "{error}");
    assert!(!judge.logprobs_disabled());
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "tried once without logprobs");
    assert!(request_json(&requests[1]).get("logprobs").is_none());
    // The next call asks for them again.
    let _ = judge_error(&judge).await;
    assert_eq!(request_json(&server.requests()[2])["logprobs"], json!(true));
}

#[tokio::test]
async fn a_400_about_something_else_is_not_retried() {
    let server = Server::start(|_, stream| {
        let error = json!({"error": {"message": "max_tokens is too large"}});
        respond(stream, "400 Bad Request", "", &error.to_string());
    });
    let judge = judge_for(&server);
    let error = judge_error(&judge).await;
    assert!(matches!(error, JudgeError::Rejected { .. }), "{error:?}");
    assert_eq!(server.requests().len(), 1);
    assert!(!judge.logprobs_disabled());
}

#[tokio::test]
async fn logprobs_off_sends_no_parameter_and_reads_no_p_fail() {
    let server = Server::start(|_, stream| {
        let body = json!({"choices": [{
            "message": {"content": "SCORE: FAIL"},
            "logprobs": {"content": [
                {"token": "SCORE:", "logprob": 0.0, "top_logprobs": []},
                {"token": " FAIL", "logprob": -0.1, "top_logprobs": [{"token": " PASS", "logprob": -2.4}]},
            ]},
        }]});
        ok_json(stream, &body);
    });
    let mut settings = settings_for(vec![server.base_url("/v1")]);
    settings.logprobs = false;
    let judge = judge_with(settings);
    let reply = judge.judge(&example()).await.expect("a reply");
    assert_eq!(reply.verdict, halubench_core::Verdict::Fail);
    assert_eq!(reply.p_fail, None);
    assert!(!judge.logprobs_disabled());
    let sent = request_json(&server.requests()[0]);
    assert!(sent.get("logprobs").is_none(), "{sent}");
    assert!(sent.get("top_logprobs").is_none(), "{sent}");
    assert_eq!(judge.info().settings["logprobs"], "false");
    // The setting is part of the cache key.
    let on = judge_for(&server);
    assert_ne!(judge.cache_key(&example()), on.cache_key(&example()));
}

#[tokio::test]
async fn malformed_logprobs_cost_only_the_p_fail() {
    let server = Server::start(|_, stream| {
        let body = json!({"choices": [{
            "message": {"content": "SCORE: FAIL"},
            "logprobs": {"content": "not a list"},
        }]});
        ok_json(stream, &body);
    });
    let reply = judge_for(&server).judge(&example()).await.expect("a reply");
    assert_eq!(reply.verdict, halubench_core::Verdict::Fail);
    assert_eq!(reply.p_fail, None);
}
