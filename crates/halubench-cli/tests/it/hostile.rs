//! A hostile OpenAI-compatible server: it echoes every secret it is sent back at the
//! client (in error bodies, in a non-JSON 200, inside a well-formed reply), sends a 64 MiB
//! body, stalls after its headers, refuses connections and asks for absurd Retry-After
//! waits. The real binary is run against each with credentials in the base URL, an API key
//! and a secret header, and nothing it prints or writes may contain any of them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::fake_openai::digest;

const USER: &str = "user-SECRETUSER";
const PASS: &str = "pw-SECRETPASS";
const QUERY: &str = "SECRETQUERY";
const KEY: &str = "sk-SECRETKEY-123";
const HEADER: &str = "X-Token: SECRETHEADER";

/// Connections one server accepts, and how long it accepts them: every loop is bounded.
const MAX_CONNECTIONS: usize = 400;
const SERVER_LIFETIME: Duration = Duration::from_secs(180);
/// Requests served on one keep-alive connection.
const MAX_REQUESTS_PER_CONNECTION: usize = 64;
/// Longest a server stalls in the middle of a response (far beyond the client's --timeout 2).
const STALL: Duration = Duration::from_secs(20);
/// Longest any one run of the binary may take before the test kills it and fails.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// What the server does with a POST (every GET is a healthy `/models`, unless said).
#[derive(Debug, Clone)]
enum Mode {
    /// This status, the body echoing the whole request.
    Echo(u16),
    /// 200, the body the echoed request (not JSON).
    EchoOk,
    /// 200 with a well-formed chat completion whose content and `model` echo the
    /// Authorization headers, the custom header and the request line.
    EchoJson,
    /// 200 with Content-Length 64 MiB, streamed (the echo first, then padding).
    Huge,
    /// Status line and headers promising 1000 bytes, then nothing for [`STALL`].
    Stall,
    /// `GET /models` answers this status echoing the request; POSTs are never reached.
    HealthEcho(u16),
    /// This status with this Retry-After on the first `throttled` attempts of each prompt,
    /// a proper reply after (`usize::MAX`: never a proper reply). The body echoes too.
    RetryAfter {
        status: u16,
        value: String,
        throttled: usize,
    },
}

/// What the server was sent, to prove that each path really carried the secrets.
#[derive(Debug, Default)]
struct Seen {
    key: bool,
    header: bool,
    query: bool,
    basic: bool,
    posts: usize,
}

struct Hostile {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

fn serve(mode: Mode) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let attempts: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let state = seen.clone();
    thread::spawn(move || {
        let deadline = Instant::now() + SERVER_LIFETIME;
        let mut accepted = 0;
        while accepted < MAX_CONNECTIONS && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    accepted += 1;
                    let (mode, seen, attempts) = (mode.clone(), state.clone(), attempts.clone());
                    thread::spawn(move || {
                        let _ = handle(stream, &mode, &seen, &attempts);
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Hostile { port, seen }
}

fn handle(
    stream: TcpStream,
    mode: &Mode,
    seen: &Mutex<Seen>,
    attempts: &Mutex<HashMap<u64, usize>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    for _ in 0..MAX_REQUESTS_PER_CONNECTION {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut head = request_line.clone();
        let mut length = 0usize;
        let mut authorization = Vec::new();
        let mut custom = String::new();
        for _ in 0..100 {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            if header == "\r\n" {
                break;
            }
            head += &header;
            let lower = header.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().unwrap_or(0).min(1 << 20);
            }
            if lower.starts_with("authorization:") {
                authorization.push(header.trim().to_string());
            }
            if lower.starts_with("x-token:") {
                custom = header.trim().to_string();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let echo = format!("{head}\r\n{}", String::from_utf8_lossy(&body));
        {
            let mut s = seen.lock().expect("lock");
            s.key |= echo.contains(KEY);
            s.header |= custom.contains("SECRETHEADER");
            s.query |= request_line.contains(QUERY);
            s.basic |= authorization
                .iter()
                .any(|a| a.contains(&basic_credentials()));
            if request_line.starts_with("POST") {
                s.posts += 1;
            }
        }

        if request_line.starts_with("GET") {
            match mode {
                Mode::HealthEcho(status) => {
                    respond(&mut writer, *status, &[], "text/plain", &echo)?;
                    return Ok(());
                }
                _ => respond(
                    &mut writer,
                    200,
                    &[],
                    "application/json",
                    "{\"object\":\"list\",\"data\":[]}",
                )?,
            }
            continue;
        }
        let attempt = {
            let mut map = attempts.lock().expect("lock");
            let n = map
                .entry(digest(&String::from_utf8_lossy(&body)))
                .or_insert(0);
            *n += 1;
            *n
        };
        match mode {
            Mode::Echo(status) => respond(&mut writer, *status, &[], "text/plain", &echo)?,
            Mode::EchoOk => respond(&mut writer, 200, &[], "text/plain", &echo)?,
            Mode::EchoJson => {
                let said = format!(
                    "{} | {} | {}",
                    authorization.join(" | "),
                    custom,
                    request_line.trim()
                );
                let reply = completion(&said, &said);
                respond(&mut writer, 200, &[], "application/json", &reply)?;
            }
            Mode::Huge => {
                stream_huge(&mut writer, &echo);
                return Ok(());
            }
            Mode::Stall => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                            Content-Length: 1000\r\n\r\n";
                writer.write_all(head.as_bytes())?;
                writer.flush()?;
                thread::sleep(STALL);
                return Ok(());
            }
            Mode::HealthEcho(_) => respond(&mut writer, 500, &[], "text/plain", &echo)?,
            Mode::RetryAfter {
                status,
                value,
                throttled,
            } => {
                if attempt <= *throttled {
                    respond(
                        &mut writer,
                        *status,
                        &[("Retry-After", value)],
                        "text/plain",
                        &echo,
                    )?;
                } else {
                    let reply =
                        completion(r#"{"REASONING": ["ok"], "SCORE": "PASS"}"#, "lynx-test");
                    respond(&mut writer, 200, &[], "application/json", &reply)?;
                }
            }
        }
    }
    Ok(())
}

/// A well-formed chat completion.
fn completion(content: &str, model: &str) -> String {
    serde_json::json!({
        "id": model,
        "object": "chat.completion",
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
    })
    .to_string()
}

/// 64 MiB in 64 KiB chunks, stopping at the first write error (the client gave up).
fn stream_huge(w: &mut TcpStream, echo: &str) {
    const TOTAL: usize = 64 << 20;
    const CHUNK: usize = 64 << 10;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {TOTAL}\r\n\r\n"
    );
    if w.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut first = echo.as_bytes().to_vec();
    first.truncate(CHUNK);
    first.resize(CHUNK, b' ');
    let padding = vec![b' '; CHUNK];
    for i in 0..TOTAL / CHUNK {
        let chunk = if i == 0 { &first } else { &padding };
        if w.write_all(chunk).is_err() {
            return;
        }
    }
    let _ = w.flush();
}

fn respond(
    w: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    crate::fake_openai::respond_with(w, &format!("{status} Hostile"), content_type, headers, body)
}

/// `user:password` as a Basic Authorization header carries it: a leak in another spelling.
fn basic_credentials() -> String {
    base64(format!("{USER}:{PASS}").as_bytes())
}

/// The base64 crate, not halubench-core's own encoder: the check must not share its bugs.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every spelling of a secret that must never be printed or written.
fn secrets() -> Vec<(&'static str, String)> {
    vec![
        ("URL user", "SECRETUSER".to_string()),
        ("URL password", "SECRETPASS".to_string()),
        ("URL query value", "SECRETQUERY".to_string()),
        ("API key", "SECRETKEY".to_string()),
        ("header value", "SECRETHEADER".to_string()),
        ("Basic credentials", basic_credentials()),
    ]
}

fn secret_url(port: u16) -> String {
    format!("http://{USER}:{PASS}@127.0.0.1:{port}/v1?api-key={QUERY}")
}

struct Ran {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
}

/// Runs the binary against `base_url` with every secret set, bounded in time; then reads
/// every file under `dir` (the run, the cache, anything else it wrote) with its stdout
/// and stderr, and fails naming the case if a secret or a panic is in any of it.
fn run_with_secrets(case: &str, dir: &Path, base_url: &str, extra: &[&str]) -> Ran {
    // The openai judge unless the case names another (the ragas judge shares its endpoint).
    let judge = match extra.iter().position(|a| *a == "--judge") {
        Some(i) => extra.get(i + 1).copied().unwrap_or("openai"),
        None => "openai",
    };
    let extra: Vec<&str> = match extra.iter().position(|a| *a == "--judge") {
        Some(i) => [&extra[..i], &extra[(i + 2).min(extra.len())..]].concat(),
        None => extra.to_vec(),
    };
    let mut args = vec![
        "run",
        "--judge",
        judge,
        "--model",
        "lynx-test",
        "--base-url",
        base_url,
        "--header",
        HEADER,
        "--timeout",
        "2",
        "--max-attempts",
        "2",
        "--out",
        "r",
    ];
    args.extend_from_slice(&extra);
    if !extra.contains(&"--limit") {
        args.extend_from_slice(&["--limit", "1"]);
    }
    let mut command = crate::halubench_command(dir, &args);
    command.env("OPENAI_API_KEY", KEY);
    let (status, stdout, stderr, elapsed) = run_bounded(command, RUN_LIMIT);
    let Some(status) = status else {
        panic!("{case}: still running after {RUN_LIMIT:?}; killed. stderr: {stderr}");
    };

    let mut everything = vec![
        ("stdout".to_string(), stdout),
        ("stderr".to_string(), stderr.clone()),
    ];
    read_tree(dir, &mut everything, 0);
    let files = everything.len() - 2;
    for (label, secret) in secrets() {
        for (path, text) in &everything {
            assert!(
                !text.contains(&secret),
                "{case}: the {label} ({secret}) leaked into {path}:\n{}",
                around(text, &secret)
            );
        }
    }
    assert!(!stderr.contains("panicked"), "{case}: {stderr}");
    eprintln!(
        "hostile: {case}: exit {:?} in {:.1}s, {files} files and stdout/stderr clean",
        status.code(),
        elapsed.as_secs_f64()
    );
    Ran {
        code: status.code(),
        stderr,
        elapsed,
    }
}

/// Some context around the first place `needle` is in `text`.
fn around(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(200)
        .map_or(0, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .nth(200)
        .map_or(text.len(), |(i, _)| at + i);
    text[start..end].to_string()
}

/// Every file under `dir`, as lossy text (charts are binary), to a bounded depth.
fn read_tree(dir: &Path, out: &mut Vec<(String, String)>, depth: usize) {
    assert!(depth < 16, "{} is too deep", dir.display());
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            read_tree(&path, out, depth + 1);
        } else {
            let bytes = std::fs::read(&path).expect("read a written file");
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

/// Runs `command` with its output captured; kills it after `limit` (status `None`).
pub(crate) fn run_bounded(
    mut command: Command,
    limit: Duration,
) -> (Option<ExitStatus>, String, String, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn halubench");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let mut status = None;
    while started.elapsed() < limit {
        if let Some(s) = child.try_wait().expect("try_wait") {
            status = Some(s);
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    if status.is_none() {
        let _ = child.kill();
    }
    // Reaps a killed child; a finished one just gives its status again.
    let _ = child.wait();
    let elapsed = started.elapsed();
    (
        status,
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
        elapsed,
    )
}

/// Asserts what every run whose calls failed must say.
fn assert_incomplete(case: &str, ran: &Ran) {
    assert_eq!(ran.code, Some(3), "{case}: {}", ran.stderr);
    assert!(
        ran.stderr.lines().any(|l| l.starts_with("incomplete:")) && ran.stderr.contains("--resume"),
        "{case}: {}",
        ran.stderr
    );
}

/// The server really was sent every secret, so that a clean output means something.
fn assert_carried(case: &str, server: &Hostile, posts: bool) {
    let seen = server.seen.lock().expect("lock");
    assert!(seen.key, "{case}: the server never saw the API key");
    assert!(seen.header, "{case}: the server never saw the header");
    assert!(seen.query, "{case}: the server never saw the query");
    if posts {
        assert!(seen.posts > 0, "{case}: no call reached the server");
    }
}

#[test]
fn a_server_that_echoes_secrets_back_never_gets_them_written() {
    let mut covered = 0;
    let cases: [(&str, Mode, &[&str], i32); 13] = [
        ("HTTP 401 echoing the request", Mode::Echo(401), &[], 3),
        ("HTTP 403 echoing the request", Mode::Echo(403), &[], 3),
        ("HTTP 404 echoing the request", Mode::Echo(404), &[], 3),
        ("HTTP 400 echoing the request", Mode::Echo(400), &[], 3),
        ("HTTP 500 echoing the request", Mode::Echo(500), &[], 3),
        ("HTTP 503 echoing the request", Mode::Echo(503), &[], 3),
        ("HTTP 429 echoing the request", Mode::Echo(429), &[], 3),
        (
            "HTTP 200 with the echoed request (not JSON)",
            Mode::EchoOk,
            &[],
            3,
        ),
        (
            "HTTP 200 JSON whose reply and model echo the secrets",
            Mode::EchoJson,
            &[],
            0,
        ),
        (
            "HTTP 200 JSON echoing the secrets, with --cache",
            Mode::EchoJson,
            &["--cache"],
            0,
        ),
        // The ragas judge: two calls and a repair request per answer, and every reply
        // journaled in its trace.
        (
            "ragas: HTTP 500 echoing the request",
            Mode::Echo(500),
            &["--judge", "ragas"],
            3,
        ),
        (
            "ragas: HTTP 200 with the echoed request (not JSON)",
            Mode::EchoOk,
            &["--judge", "ragas"],
            3,
        ),
        (
            "ragas: HTTP 200 JSON whose replies echo the secrets",
            Mode::EchoJson,
            &["--judge", "ragas"],
            0,
        ),
    ];
    for (case, mode, extra, expected) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = serve(mode);
        let ran = run_with_secrets(case, dir.path(), &secret_url(server.port), extra);
        assert_carried(case, &server, true);
        if expected == 3 {
            assert_incomplete(case, &ran);
        } else {
            assert_eq!(ran.code, Some(expected), "{case}: {}", ran.stderr);
        }
        if extra.contains(&"ragas") && expected == 0 {
            // The echo is no statement list: repaired once, then INVALID, with both replies
            // in the journal's trace, scrubbed.
            let journal =
                std::fs::read_to_string(dir.path().join("r/judgements.jsonl")).expect("journal");
            assert!(
                journal.contains("malformed_json")
                    && journal.contains("rejected_replies")
                    && journal.contains("***"),
                "{case}: {journal}"
            );
        }
        if extra.contains(&"--cache") {
            assert!(
                dir.path().join("response-cache").exists(),
                "{case}: the cache was used"
            );
        }
        covered += 1;
    }
    eprintln!("hostile: echoing server: {covered} secret paths covered");
}

#[test]
fn a_huge_a_stalled_and_a_refused_response_end_the_run_cleanly() {
    let mut covered = 0;

    let case = "a 64 MiB body";
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(Mode::Huge);
    let ran = run_with_secrets(case, dir.path(), &secret_url(server.port), &[]);
    assert_carried(case, &server, true);
    assert_incomplete(case, &ran);
    let posts = server.seen.lock().expect("lock").posts;
    // --limit 1 is one example per task: six, each refused once and not retried.
    assert!(
        posts <= 6,
        "{case}: an oversized body was retried: {posts} calls"
    );
    covered += 1;

    let case = "headers, then a stalled body";
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(Mode::Stall);
    let ran = run_with_secrets(case, dir.path(), &secret_url(server.port), &[]);
    assert_carried(case, &server, true);
    assert_incomplete(case, &ran);
    // Two attempts of at most --timeout 2 each, and a backoff: nowhere near the stall.
    assert!(
        ran.elapsed < Duration::from_secs(15),
        "{case}: --timeout did not bound the body: {:?}",
        ran.elapsed
    );
    covered += 1;

    for status in [401, 503] {
        let case = format!("health check answered HTTP {status} echoing the request");
        let dir = tempfile::tempdir().expect("tempdir");
        let server = serve(Mode::HealthEcho(status));
        let ran = run_with_secrets(&case, dir.path(), &secret_url(server.port), &[]);
        assert_carried(&case, &server, false);
        assert_eq!(ran.code, Some(1), "{case}: {}", ran.stderr);
        covered += 1;
    }

    let refused = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let case = "a refused connection";
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_with_secrets(case, dir.path(), &secret_url(refused), &[]);
    assert_eq!(ran.code, Some(1), "{case}: {}", ran.stderr);
    assert!(
        ran.stderr.contains(&format!("127.0.0.1:{refused}")),
        "{case}: names the endpoint: {}",
        ran.stderr
    );
    covered += 1;

    let case = "a refused connection on the second replica";
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(Mode::EchoJson);
    let both = format!("{},{}", secret_url(server.port), secret_url(refused));
    let ran = run_with_secrets(case, dir.path(), &both, &[]);
    assert_eq!(ran.code, Some(1), "{case}: {}", ran.stderr);
    covered += 1;

    eprintln!("hostile: huge, stalled and refused: {covered} secret paths covered");
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) this many seconds from now.
fn http_date_in(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::seconds(seconds))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[test]
fn a_retry_after_beyond_max_wait_stops_the_run_at_once() {
    let mut covered = 0;
    for status in [429, 503] {
        let cases: [(String, String, &[&str]); 4] = [
            (
                format!("{status} Retry-After: 1e20"),
                "1e20".to_string(),
                &[],
            ),
            (
                format!("{status} Retry-After: 86400"),
                "86400".to_string(),
                &[],
            ),
            (
                format!("{status} Retry-After: an HTTP-date in 1 hour"),
                http_date_in(3600),
                &[],
            ),
            (
                format!("{status} Retry-After: an HTTP-date in 10 s, --max-wait 5"),
                http_date_in(10),
                &["--max-wait", "5"],
            ),
        ];
        for (case, value, extra) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let server = serve(Mode::RetryAfter {
                status,
                value,
                throttled: usize::MAX,
            });
            let ran = run_with_secrets(&case, dir.path(), &secret_url(server.port), extra);
            assert_carried(&case, &server, true);
            assert_incomplete(&case, &ran);
            assert!(
                ran.elapsed < Duration::from_secs(30),
                "{case}: took {:?}",
                ran.elapsed
            );
            let said = ran
                .stderr
                .lines()
                .find(|l| l.contains("asked to wait"))
                .unwrap_or_else(|| panic!("{case}: says the server asked to wait: {}", ran.stderr));
            assert!(
                said.chars().any(|c| c.is_ascii_digit()),
                "{case}: says how long: {said}"
            );
            // Stopped at the first answer: no example was tried twice.
            let posts = server.seen.lock().expect("lock").posts;
            assert!(
                posts <= 6,
                "{case}: {posts} calls after being asked to wait"
            );
            covered += 1;
        }
    }
    eprintln!("hostile: long Retry-After: {covered} secret paths covered");
}

#[test]
fn a_short_or_unreadable_retry_after_is_waited_out_and_the_run_completes() {
    let mut covered = 0;
    for status in [429, 503] {
        for value in ["-5", "NaN", "soon", "0.2"] {
            let case = format!("{status} Retry-After: {value} on the first attempt");
            let dir = tempfile::tempdir().expect("tempdir");
            let server = serve(Mode::RetryAfter {
                status,
                value: value.to_string(),
                throttled: 1,
            });
            let ran = run_with_secrets(&case, dir.path(), &secret_url(server.port), &[]);
            assert_carried(&case, &server, true);
            assert_eq!(ran.code, Some(0), "{case}: {}", ran.stderr);
            assert!(
                !ran.stderr.contains("asked to wait"),
                "{case}: {}",
                ran.stderr
            );
            assert!(
                ran.elapsed < Duration::from_secs(30),
                "{case}: took {:?}",
                ran.elapsed
            );
            let posts = server.seen.lock().expect("lock").posts;
            assert_eq!(posts, 12, "{case}: six examples, two attempts each");
            let journal =
                std::fs::read_to_string(dir.path().join("r/judgements.jsonl")).expect("journal");
            assert_eq!(journal.lines().count(), 6, "{case}");
            covered += 1;
        }
    }
    eprintln!("hostile: short or unreadable Retry-After: {covered} secret paths covered");
}
