//! Throughput of the run engine against an OpenAI-compatible server that always takes
//! 50 ms to answer: at concurrency C the ceiling is C / 0.05 s requests per second, and the
//! harness should reach at least 95% of it. Also reports the harness's CPU time per request,
//! its peak memory (the largest of the runs so far), and the fake server's own CPU per request:
//! both share this machine's cores.
//!
//! Run with `cargo bench -p halubench-cli --bench openai_throughput`. The fake server runs
//! in this process on 127.0.0.1 (HTTP/1.1, keep-alive); the harness is the release
//! `halubench` binary judging the rows of `../shared/data/halueval-qa` with the response
//! cache off. At 1,024 in flight 20,000 rows would be under 20 rounds of 50 ms, where the
//! first and last round weigh too much; the rows are repeated (new ids) into a JSON-lines
//! file of exactly the rows judged, 50 or more rounds at every concurrency.
//! Throughput is counted at the server, from the first request to the last response, so
//! process start-up and dataset loading are excluded; the whole-process figure is shown too.
//! The server holds each call on its own timer thread, not tokio's: tokio's timer wheel
//! ticks in whole milliseconds, and its 50 ms sleeps ended 1.1-1.5 ms late on average
//! ("server holds ms" shows the hold as measured), which took 2-3% off the ceiling before
//! the harness had done anything. "harness call ms" is the journal's mean `latency_ms`: the
//! hold plus everything the harness and the kernel add to a call.
//! `-- --concurrency N` runs one setting, `-- --harness FILE` another build of `halubench`
//! (an older one, for a before/after on the same server).
//! "end s" is the time from the last response to the harness's exit (scores, reports).
//! "ramp ms" is the time from the first request to the C-th (the connections opening),
//! "connections" how many the harness opened.
//! "turnaround ms" is the mean time, on one connection, from a response written to the next
//! request read: the harness's share of every call's cycle (reading the reply, journaling
//! it, preparing and sending the next call), with the kernel's on both sides.
//! "steady" counts only the responses between 4 latencies after the first request and 4
//! before the last response: the engine's rate once every slot is busy, without the ramp-up
//! (opening C connections) and the tail (fewer than C calls left), which weigh more the
//! fewer rounds a run has.

// getrusage has no safe wrapper in std; see common/.
#![allow(unsafe_code)]

mod common;

use std::collections::VecDeque;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const LATENCY: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Window {
    requests: AtomicU64,
    /// Nanoseconds since `epoch` of the first request and of the last response.
    first: AtomicU64,
    last: AtomicU64,
    /// When each response was written, nanoseconds since `epoch`.
    responses: Mutex<Vec<u64>>,
    /// Sum over requests of the time from having read the request to having written the
    /// response: the 50 ms plus the timer's lateness and the server's own queueing.
    held_ns: AtomicU64,
    /// Connections accepted: one per call in flight, unless the harness opens more.
    connections: AtomicU64,
    /// When each request was read, nanoseconds since `epoch`.
    arrivals: Mutex<Vec<u64>>,
    /// Sum and count of the gaps, on one connection, from a response written to the next
    /// request read: what the harness (and both kernels) add to each call's cycle.
    turnaround_ns: AtomicU64,
    turnarounds: AtomicU64,
}

impl Window {
    /// From the first request to the `concurrency`-th: how long the harness took to open
    /// its connections and send a first call on each.
    fn ramp(&self, concurrency: usize) -> Duration {
        let mut arrivals = self
            .arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        arrivals.sort_unstable();
        match (arrivals.first(), arrivals.get(concurrency - 1)) {
            (Some(first), Some(last)) => Duration::from_nanos(last - first),
            _ => Duration::ZERO,
        }
    }

    /// Responses per second between `margin` after the first request and `margin` before
    /// the last response.
    fn steady_rate(&self, margin: Duration) -> f64 {
        let margin = margin.as_nanos() as u64;
        let from = self.first.load(Ordering::Relaxed) + margin;
        let to = self.last.load(Ordering::Relaxed).saturating_sub(margin);
        if to <= from {
            return f64::NAN;
        }
        let responses = self.responses.lock().unwrap_or_else(|e| e.into_inner());
        let inside = responses.iter().filter(|t| (from..to).contains(t)).count();
        inside as f64 / Duration::from_nanos(to - from).as_secs_f64()
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join("../shared/data/halueval-qa/test-00000-of-00001.parquet");
    if !data.is_file() {
        eprintln!(
            "skipping: {} is missing (it lives beside the repository)",
            data.display()
        );
        return;
    }
    // The server holds a socket per connection too: its descriptor table grown once, up
    // front, as the harness grows its own (crates/halubench-cli/src/sockets.rs), so that
    // no RCU grace period stalls its accept loop while 1,024 connections open.
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    drop(rustix::io::fcntl_dupfd_cloexec(&null, 4095).expect("a descriptor table for 4,096"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "fake server latency {} ms, release harness, response cache off\n",
        LATENCY.as_millis()
    );
    println!(
        "{:>11} {:>9} {:>12} {:>12} {:>9} {:>9} {:>14} {:>6} {:>13} {:>8} {:>17} {:>15} {:>15} {:>8} {:>11} {:>13}",
        "concurrency",
        "requests",
        "ceiling/s",
        "measured/s",
        "ratio",
        "steady",
        "process wall s",
        "end s",
        "CPU ms/req",
        "peak MB",
        "server CPU ms/req",
        "server holds ms",
        "harness call ms",
        "ramp ms",
        "connections",
        "turnaround ms"
    );
    // `-- --concurrency N` measures that one setting only (for a profiler, say);
    // `-- --harness FILE` another build of `halubench` (an older one, for a before/after
    // on the same server).
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        let i = args.iter().position(|a| a == name)?;
        Some(
            args.get(i + 1)
                .unwrap_or_else(|| panic!("{name} needs a value"))
                .clone(),
        )
    };
    let only: Option<usize> = flag("--concurrency").map(|n| n.parse().expect("--concurrency N"));
    let harness = flag("--harness").unwrap_or_else(|| env!("CARGO_BIN_EXE_halubench").to_string());
    // One timer thread for every setting: it parks while nothing is held.
    let timer = Timer::start();
    for (concurrency, requests) in [(64usize, 12_800usize), (256, 25_600), (1_024, 51_200)] {
        if only.is_some_and(|c| c != concurrency) {
            continue;
        }
        // Exactly the rows judged: loading more would count against every request.
        let rows = repeated_rows(&data, requests);
        let epoch = Instant::now();
        let window = Arc::new(Window::default());
        let listener = runtime.block_on(listen()).expect("listen");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let server = runtime.spawn(serve(listener, window.clone(), epoch, timer.clone()));

        let work = std::env::temp_dir().join(format!(
            "halubench-throughput-{}-{concurrency}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&work);
        let cpu_before = common::children_usage().cpu_seconds;
        let server_cpu_before = common::own_cpu_seconds();
        let started = Instant::now();
        let out = Command::new(&harness)
            .args([
                "run",
                "--judge",
                "openai",
                "--model",
                "bench",
                "--base-url",
                &base_url,
            ])
            .args([
                "--dataset",
                &rows.path().display().to_string(),
                "--limit",
                &requests.to_string(),
            ])
            .args([
                "--concurrency",
                &concurrency.to_string(),
                "--no-cache",
                "--out",
            ])
            .arg(&work)
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("OPENAI_API_KEY")
            .output()
            .expect("run halubench");
        let wall = started.elapsed();
        // From the last response to the harness's exit: scoring, reports, charts.
        let end = (epoch + Duration::from_nanos(window.last.load(Ordering::Relaxed)))
            .checked_duration_since(started)
            .map_or(Duration::ZERO, |last| wall.saturating_sub(last));
        let server_cpu = common::own_cpu_seconds() - server_cpu_before;
        let after = common::children_usage();
        let cpu = after.cpu_seconds - cpu_before;
        assert!(
            out.status.success(),
            "halubench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.abort();
        let call_ms = mean_call_ms(&work.join("judgements.jsonl"));
        let _ = std::fs::remove_dir_all(&work);

        let served = window.requests.load(Ordering::Relaxed);
        let span = Duration::from_nanos(
            window.last.load(Ordering::Relaxed) - window.first.load(Ordering::Relaxed),
        );
        let ceiling = concurrency as f64 / LATENCY.as_secs_f64();
        let measured = served as f64 / span.as_secs_f64();
        let held_ms = window.held_ns.load(Ordering::Relaxed) as f64 / 1e6 / served as f64;
        println!(
            "{:>11} {:>9} {:>12.0} {:>12.0} {:>8.1}% {:>8.1}% {:>14.2} {:>6.2} {:>13.3} {:>8.1} {:>17.3} {:>15.2} {:>15.2} {:>8.1} {:>11} {:>13.2}",
            concurrency,
            served,
            ceiling,
            measured,
            100.0 * measured / ceiling,
            100.0 * window.steady_rate(4 * LATENCY) / ceiling,
            wall.as_secs_f64(),
            end.as_secs_f64(),
            1000.0 * cpu / served as f64,
            after.max_rss_kb as f64 / 1024.0,
            1000.0 * server_cpu / served as f64,
            held_ms,
            call_ms,
            window.ramp(concurrency).as_secs_f64() * 1000.0,
            window.connections.load(Ordering::Relaxed),
            window.turnaround_ns.load(Ordering::Relaxed) as f64
                / 1e6
                / window.turnarounds.load(Ordering::Relaxed).max(1) as f64
        );
    }
}

/// The mean of the journal's `latency_ms`: each call as the harness timed it, from before
/// sending to the parsed reply. Beside the server's hold time it says how much of a call's
/// cycle is spent on which side.
fn mean_call_ms(journal: &Path) -> f64 {
    let text = std::fs::read_to_string(journal).expect("read the journal");
    let latencies: Vec<f64> = text
        .lines()
        .map(|line| {
            let judgement: serde_json::Value = serde_json::from_str(line).expect("a judgement");
            judgement["latency_ms"].as_f64().expect("latency_ms")
        })
        .collect();
    latencies.iter().sum::<f64>() / latencies.len() as f64
}

/// The rows of `data` repeated, each copy under new ids, into a JSON-lines dataset of
/// `count` rows.
fn repeated_rows(data: &Path, count: usize) -> tempfile::NamedTempFile {
    use std::io::Write as _;
    let dataset = halubench_data::load(
        &halubench_data::DatasetSpec::file(data),
        &halubench_data::HubSettings::from_env(),
    )
    .expect("load halueval-qa");
    let mut file = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .expect("temp file");
    let mut out = std::io::BufWriter::new(file.as_file_mut());
    for (i, e) in dataset.examples.iter().cycle().take(count).enumerate() {
        let row = serde_json::json!({
            "id": format!("{}-{i}", e.id),
            "source_ds": e.task,
            "question": e.question,
            "passage": e.passage,
            "answer": e.answer,
            "label": e.label.to_string(),
        });
        writeln!(out, "{row}").expect("write rows");
    }
    out.flush().expect("write rows");
    drop(out);
    file
}

/// A listener on 127.0.0.1 whose accept queue holds every connection the harness opens at
/// once. `TcpListener::bind` asks for 1,024: at 1,024 calls in flight the first burst of
/// connections overflowed it, and each dropped handshake cost a client a retransmission
/// (a second or more) before its first call, which the window counted against the harness.
async fn listen() -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse().expect("address"))?;
    socket.listen(4096)
}

/// Ends each held call when its 50 ms are up, a fraction of a millisecond late at most.
/// Every call is held equally long, so deadlines come in order and a queue is enough; the
/// timer thread sleeps at least [`Timer::BATCH`] between wake-ups (one per call would cost
/// the server, and so the harness on the same cores, more CPU than the calls themselves),
/// and parks while nothing is held.
#[derive(Clone)]
struct Timer {
    held: Arc<Mutex<Held>>,
    thread: std::thread::Thread,
}

/// The calls held, each with its deadline and the channel that ends it, earliest first.
type Held = VecDeque<(Instant, oneshot::Sender<()>)>;

impl Timer {
    const BATCH: Duration = Duration::from_micros(100);

    fn start() -> Timer {
        let held: Arc<Mutex<Held>> = Arc::default();
        let queue = held.clone();
        let thread = std::thread::spawn(move || {
            loop {
                let now = Instant::now();
                let next = {
                    let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
                    while queue.front().is_some_and(|(deadline, _)| *deadline <= now) {
                        if let Some((_, call)) = queue.pop_front() {
                            let _ = call.send(());
                        }
                    }
                    queue.front().map(|(deadline, _)| *deadline)
                };
                match next {
                    None => std::thread::park(),
                    Some(deadline) => std::thread::sleep(
                        deadline
                            .max(now + Self::BATCH)
                            .saturating_duration_since(Instant::now()),
                    ),
                }
            }
        })
        .thread()
        .clone();
        Timer { held, thread }
    }

    /// Waits until `deadline`.
    async fn until(&self, deadline: Instant) {
        let (call, done) = oneshot::channel();
        let was_idle = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.push_back((deadline, call));
            held.len() == 1
        };
        if was_idle {
            self.thread.unpark();
        }
        let _ = done.await;
    }
}

async fn serve(listener: TcpListener, window: Arc<Window>, epoch: Instant, timer: Timer) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        window.connections.fetch_add(1, Ordering::Relaxed);
        let (window, timer) = (window.clone(), timer.clone());
        tokio::spawn(async move {
            let _ = connection(stream, &window, epoch, &timer).await;
        });
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    window: &Window,
    epoch: Instant,
    timer: &Timer,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let mut answered: Option<Instant> = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if let Some(answered) = answered.take() {
            window
                .turnaround_ns
                .fetch_add(answered.elapsed().as_nanos() as u64, Ordering::Relaxed);
            window.turnarounds.fetch_add(1, Ordering::Relaxed);
        }
        let is_get = line.starts_with("GET");
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let read_at = Instant::now();
        let reply = if is_get {
            "{\"object\":\"list\",\"data\":[]}".to_string()
        } else {
            let now = epoch.elapsed().as_nanos() as u64;
            let _ = window
                .first
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            window
                .arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(now);
            timer.until(read_at + LATENCY).await;
            "{\"model\":\"bench\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"{\\\"REASONING\\\": [\\\"ok\\\"], \\\"SCORE\\\": \\\"PASS\\\"}\"}}],\"usage\":{\"prompt_tokens\":300,\"completion_tokens\":20}}".to_string()
        };
        // One write: a head and a body in two small segments would meet Nagle's algorithm
        // and the client's delayed ACK, and measure 40 ms of TCP instead of the harness.
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        write.write_all(response.as_bytes()).await?;
        if !is_get {
            answered = Some(Instant::now());
            let now = epoch.elapsed().as_nanos() as u64;
            window.requests.fetch_add(1, Ordering::Relaxed);
            window
                .held_ns
                .fetch_add(read_at.elapsed().as_nanos() as u64, Ordering::Relaxed);
            window.last.fetch_max(now, Ordering::Relaxed);
            window
                .responses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(now);
        }
    }
}
