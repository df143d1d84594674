//! A fake OpenAI-compatible server on 127.0.0.1 with scripted faults. Its verdicts are a
//! pure function of the prompt, so a run through faults must end exactly where a
//! fault-free run ends.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the server does with one attempt at one prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    None,
    /// 429 with `Retry-After: 0.2`.
    Throttle,
    Status(u16),
    /// Answers garbage after this long (meant to outlast the client's timeout).
    Slow(Duration),
    /// Answers properly after this long.
    Late(Duration),
    /// Closes the connection without a response.
    Reset,
    MalformedBody,
    EmptyChoices,
    /// Answers properly, with this reply instead of the digest's.
    Says(&'static str),
}

pub type Script = Arc<dyn Fn(u64, usize) -> Fault + Send + Sync>;

/// Like [`Script`], but given the whole prompt.
pub type PromptScript = Arc<dyn Fn(&str, usize) -> Fault + Send + Sync>;

pub struct FakeOpenAi {
    pub base_url: String,
    /// Attempts per prompt digest.
    pub attempts: Arc<Mutex<HashMap<u64, usize>>>,
    /// Authorization headers seen.
    pub auth: Arc<Mutex<Vec<String>>>,
}

impl FakeOpenAi {
    pub fn total_attempts(&self) -> usize {
        self.attempts.lock().expect("lock").values().sum()
    }
}

/// `script(prompt_digest, attempt)` picks the fault for each attempt (attempts count from 1).
pub fn serve(script: Script) -> FakeOpenAi {
    serve_prompts(Arc::new(move |prompt, attempt| {
        script(digest(prompt), attempt)
    }))
}

/// `script(prompt, attempt)` picks the fault for each attempt.
pub fn serve_prompts(script: PromptScript) -> FakeOpenAi {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let attempts = Arc::new(Mutex::new(HashMap::new()));
    let auth = Arc::new(Mutex::new(Vec::new()));
    let (a, h) = (attempts.clone(), auth.clone());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (script, a, h) = (script.clone(), a.clone(), h.clone());
            thread::spawn(move || {
                let _ = handle(stream, &script, &a, &h);
            });
        }
    });
    FakeOpenAi {
        base_url,
        attempts,
        auth,
    }
}

/// The verdict the fake judge gives a prompt: half PASS, half FAIL, a few unparseable. The
/// reasoning names the prompt's digest, so a test can tell which log-probabilities went
/// with a journaled reply.
pub fn reply_for(digest: u64) -> String {
    match digest % 10 {
        0 => "I am not sure about this one.".to_string(),
        d if d % 2 == 1 => {
            format!("{{\"REASONING\": [\"supported (prompt {digest})\"], \"SCORE\": \"PASS\"}}")
        }
        _ => format!(
            "```json\n{{'REASONING': ['not supported (prompt {digest})'], 'SCORE': 'FAIL'}}\n```"
        ),
    }
}

/// The digest a [`reply_for`] reply names, if it names one.
pub fn digest_in(reply: &str) -> Option<u64> {
    let start = reply.find("(prompt ")? + "(prompt ".len();
    let end = start + reply[start..].find(')')?;
    reply[start..end].parse().ok()
}

/// The log-probabilities of FAIL and PASS at the verdict of the reply to a prompt.
pub fn verdict_logprobs(digest: u64) -> (f64, f64) {
    (
        -0.05 - (digest % 7) as f64 * 0.3,
        -0.05 - ((digest / 7) % 5) as f64 * 0.4,
    )
}

/// OpenAI's `logprobs` object for `content`: the text before the verdict word as one token,
/// the verdict word with PASS, FAIL and an unrelated token as its alternatives, then the rest.
fn logprobs_for(content: &str, digest: u64) -> serde_json::Value {
    let (fail, pass) = verdict_logprobs(digest);
    let verdict = content.rfind("SCORE").and_then(|score| {
        ["PASS", "FAIL"]
            .iter()
            .filter_map(|word| content[score..].find(word).map(|at| (score + at, *word)))
            .min()
    });
    let token = |text: &str, logprob: f64, top: serde_json::Value| serde_json::json!({"token": text, "logprob": logprob, "top_logprobs": top});
    let tokens = match verdict {
        None => vec![token(content, -0.01, serde_json::json!([]))],
        Some((at, word)) => {
            let chosen = if word == "FAIL" { fail } else { pass };
            let top = serde_json::json!([
                {"token": word, "logprob": chosen},
                {"token": if word == "FAIL" { "PASS" } else { "FAIL" },
                 "logprob": if word == "FAIL" { pass } else { fail }},
                {"token": " the", "logprob": -6.0},
            ]);
            vec![
                token(&content[..at], -0.01, serde_json::json!([])),
                token(word, chosen, top),
                token(&content[at + word.len()..], -0.01, serde_json::json!([])),
            ]
        }
    };
    serde_json::json!({"content": tokens})
}

pub fn digest(text: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One HTTP/1.1 request as read off a connection: its request line, its header lines and
/// its body (`Content-Length` bytes).
pub struct Request {
    pub line: String,
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

/// The next request on a keep-alive connection; `None` once the client has closed it.
pub fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        if header == "\r\n" {
            break;
        }
        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        headers.push(header);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        line,
        headers,
        body,
    }))
}

fn handle(
    stream: TcpStream,
    script: &PromptScript,
    attempts: &Mutex<HashMap<u64, usize>>,
    auth: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    // Keep-alive: serve requests on this connection until the client closes it.
    while let Some(Request {
        line: request_line,
        headers,
        body,
    }) = read_request(&mut reader)?
    {
        for header in headers {
            if header.to_ascii_lowercase().starts_with("authorization:") {
                auth.lock().expect("lock").push(header.trim().to_string());
            }
        }
        if request_line.starts_with("GET") {
            respond(
                &mut writer,
                "200 OK",
                &[],
                "{\"object\":\"list\",\"data\":[]}",
            )?;
            continue;
        }
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let prompt = request["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let model = request["model"].as_str().unwrap_or_default().to_string();
        let d = digest(&prompt);
        let attempt = {
            let mut map = attempts.lock().expect("lock");
            let n = map.entry(d).or_insert(0);
            *n += 1;
            *n
        };
        let mut fault = script(&prompt, attempt);
        if let Fault::Late(wait) = fault {
            thread::sleep(wait);
            fault = Fault::None;
        }
        match fault {
            Fault::None | Fault::Late(_) | Fault::Says(_) => {
                let content = match fault {
                    Fault::Says(text) => text.to_string(),
                    _ => reply_for(d),
                };
                let logprobs = (request["logprobs"] == true).then(|| logprobs_for(&content, d));
                let reply = serde_json::json!({
                    "id": "x", "object": "chat.completion", "model": format!("{model}-served"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": logprobs, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": 20, "total_tokens": prompt.len() / 4 + 20}
                });
                respond(&mut writer, "200 OK", &[], &reply.to_string())?;
            }
            Fault::Throttle => respond(
                &mut writer,
                "429 Too Many Requests",
                &[("Retry-After", "0.2")],
                "{\"error\":{\"message\":\"rate limited\"}}",
            )?,
            Fault::Status(code) => respond(
                &mut writer,
                &format!("{code} Oops"),
                &[],
                "{\"error\":\"boom\"}",
            )?,
            Fault::Slow(wait) => {
                thread::sleep(wait);
                respond(&mut writer, "200 OK", &[], "{}")?;
            }
            Fault::Reset => return Ok(()),
            Fault::MalformedBody => respond(&mut writer, "200 OK", &[], "{\"choices\": [ {\"mess")?,
            Fault::EmptyChoices => respond(
                &mut writer,
                "200 OK",
                &[],
                "{\"choices\": [], \"model\": \"m\"}",
            )?,
        }
    }
    Ok(())
}

fn respond(
    w: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    respond_with(w, status, "application/json", headers, body)
}

/// One HTTP/1.1 response: `status` is the status line's tail (`200 OK`).
pub fn respond_with(
    w: &mut TcpStream,
    status: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    // One write, so that Nagle's algorithm never holds back the body.
    w.write_all((head + body).as_bytes())?;
    w.flush()
}
