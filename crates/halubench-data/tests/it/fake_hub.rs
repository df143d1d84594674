//! A minimal Hugging Face hub on 127.0.0.1: just enough HTTP for `hf-hub`'s resolve
//! requests (`Range: bytes=0-0` for metadata, then the body), plus a server that accepts
//! connections and never answers.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct FakeHub {
    pub endpoint: String,
    /// Request lines seen ("GET /datasets/...").
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// Serves `body` at `/datasets/<repo>/resolve/<any revision>/<file>` with the given commit
/// and an LFS-style ETag (the body's sha256). Any other path is a 404.
pub fn serve(repo: &str, file: &str, body: Vec<u8>, commit: &str) -> FakeHub {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (seen, prefix, suffix) = (
        requests.clone(),
        format!("/datasets/{repo}/resolve/"),
        format!("/{file}"),
    );
    let etag = halubench_data::sha256_hex(&body);
    let commit = commit.to_string();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (body, seen, prefix, suffix, etag, commit) = (
                body.clone(),
                seen.clone(),
                prefix.clone(),
                suffix.clone(),
                etag.clone(),
                commit.clone(),
            );
            thread::spawn(move || {
                let _ = answer(stream, &body, &seen, &prefix, &suffix, &etag, &commit);
            });
        }
    });
    FakeHub { endpoint, requests }
}

fn answer(
    mut stream: TcpStream,
    body: &[u8],
    seen: &Mutex<Vec<String>>,
    prefix: &str,
    suffix: &str,
    etag: &str,
    commit: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range: Option<(usize, Option<usize>)> = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("range: bytes=") {
            let (start, end) = value.trim().split_once('-').unwrap_or(("0", ""));
            range = start.parse().ok().map(|s| (s, end.parse().ok()));
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    seen.lock().expect("lock").push(format!("{method} {path}"));

    if !(path.starts_with(prefix) && path.ends_with(suffix)) {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let size = body.len();
    // `bytes=0-0` is hf-hub asking for size and commit; `bytes=N-` is the body from N.
    let (status, slice, content_range) = match range {
        Some((start, end)) if method == "GET" && start < size => {
            let end = end.unwrap_or(size - 1).min(size - 1);
            (
                "206 Partial Content",
                &body[start..=end],
                Some(format!("bytes {start}-{end}/{size}")),
            )
        }
        _ => ("200 OK", body, None),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nETag: \"{etag}\"\r\nX-Repo-Commit: {commit}\r\nContent-Length: {}\r\nConnection: close\r\n",
        slice.len()
    );
    if let Some(content_range) = content_range {
        head += &format!("Content-Range: {content_range}\r\n");
    }
    head += "\r\n";
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(slice)?;
    }
    stream.flush()
}

/// Accepts connections and never answers: what makes a client without timeouts hang.
pub fn silent() -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            if held.len() > 8 {
                break;
            }
        }
    });
    (endpoint, handle)
}

/// A port on 127.0.0.1 that nothing listens on.
pub fn closed_port_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}
