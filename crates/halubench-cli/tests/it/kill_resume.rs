//! `kill -9` soak: a run killed twenty times at pseudo-random moments and resumed each
//! time must end with every example judged exactly once, paying again only for the calls
//! in flight at the kills. And one run directory, one process: a second `run --resume`,
//! `run --out` or `score` on a directory in use is refused at once, naming the holder.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::fake_openai::{self, Fault};
use crate::hostile::run_bounded;

const KILLS: usize = 20;
const CONCURRENCY: usize = 64;

fn halubench_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = crate::halubench_command(dir, args);
    command.env("OPENAI_API_KEY", "sk-kill-resume-test");
    command
}

/// The judge flags, identical in every run and resume of one directory.
fn judge_args<'a>(base_url: &'a str, dataset: &'a str, concurrency: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--judge",
        "openai",
        "--model",
        "m",
        "--base-url",
        base_url,
        "--dataset",
        dataset,
        "--concurrency",
        concurrency,
        "--timeout",
        "10",
    ]
}

/// What a journal holds right now: its whole lines (each must be a JSON object with an
/// `id`) and whether a torn fragment follows them.
struct JournalState {
    lines: Vec<serde_json::Value>,
    torn: bool,
}

fn read_journal(path: &Path) -> JournalState {
    let Ok(bytes) = std::fs::read(path) else {
        return JournalState {
            lines: Vec::new(),
            torn: false,
        };
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let lines = bytes[..whole]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "{}: whole line {} is not JSON ({e}): {}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(l)
                )
            });
            assert!(v["id"].is_string(), "line {} has no id: {v}", i + 1);
            v
        })
        .collect();
    JournalState {
        lines,
        torn: whole < bytes.len(),
    }
}

/// A deterministic pseudo-random delay in 50..=400 ms for iteration `i`: one step of an
/// LCG seeded per iteration (the seed mixed by splitmix64 first, or consecutive seeds would
/// give evenly spaced delays), so that a failure can be replayed.
fn kill_delay(i: usize) -> Duration {
    let mut z = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let x = z
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    Duration::from_millis(50 + (x >> 33) % 351)
}

/// Waits for `child` until `deadline`, polling; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn kill_9_twenty_times_then_resume_judges_every_example_exactly_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir for stderr");
    // 50 to 400 ms a call, by prompt. At a flat 50 ms the 143 rows take about 150 ms at 64
    // in flight, so the run was over by the second kill and the other kills only ever hit
    // start-up; with a spread, most kills land with calls in flight, and the slowest calls
    // can only finish in the last, unkilled resume.
    let server = fake_openai::serve(Arc::new(|d, _| {
        Fault::Late(Duration::from_millis(50 * (1 + d % 8)))
    }));
    let sample = crate::sample_path();
    let concurrency = CONCURRENCY.to_string();
    let base = judge_args(&server.base_url, &sample, &concurrency);
    let journal = dir.path().join("r/judgements.jsonl");

    let (mut kills, mut finished_first, mut torn_seen, mut fresh_starts) = (0, 0, 0, 0);
    let mut kills_in_flight = 0;
    let mut most_repaid = (0usize, 0usize);
    let mut timeline = Vec::new();
    for i in 0..KILLS {
        // Until run.toml exists there is no run to resume: start it (again) with --out. A
        // run killed between run.toml and its first journal line resumes like any other.
        let resume = dir.path().join("r/run.toml").exists();
        fresh_starts += usize::from(!resume);
        let mut args = base.clone();
        args.extend_from_slice(if resume {
            &["--resume", "r"]
        } else {
            &["--out", "r"]
        });
        let before = read_journal(&journal).lines.len();
        let attempts_before = server.total_attempts();
        let log = logs.path().join(format!("{i}.stderr"));
        let mut child = halubench_command(dir.path(), &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("stderr file"))
            .spawn()
            .expect("spawn");
        let spawned = Instant::now();
        let delay = kill_delay(i);
        let (mut first_call, mut exited) = (None, None);
        // Bounded: the delay is at most 400 ms.
        while spawned.elapsed() < delay {
            if let Some(status) = child.try_wait().expect("try_wait") {
                exited = Some(status);
                break;
            }
            if first_call.is_none() && server.total_attempts() > attempts_before {
                first_call = Some(spawned.elapsed());
            }
            thread::sleep(Duration::from_millis(2));
        }
        let what = match exited {
            Some(status) => {
                let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                assert!(
                    status.success(),
                    "iteration {i} ended by itself with {status}: {stderr}"
                );
                finished_first += 1;
                "finished"
            }
            None => {
                child.kill().expect("kill -9");
                child.wait().expect("reap");
                kills += 1;
                "killed"
            }
        };
        // Let the server count requests that were on the wire at the kill.
        thread::sleep(Duration::from_millis(30));
        let state = read_journal(&journal);
        torn_seen += usize::from(state.torn);
        let paid = server.total_attempts() - attempts_before;
        let added = state.lines.len().saturating_sub(before);
        let repaid = paid.saturating_sub(added);
        kills_in_flight += usize::from(what == "killed" && repaid > 0);
        if repaid > most_repaid.1 {
            most_repaid = (i, repaid);
        }
        timeline.push(format!(
            "  {i:2}: {what} at {:3} ms, first call at {}, {paid} calls, {added} kept{}",
            delay.as_millis(),
            first_call.map_or("-".to_string(), |t| format!("{} ms", t.as_millis())),
            if state.torn { ", torn last line" } else { "" }
        ));
    }

    let mut args = base.clone();
    args.extend_from_slice(&["--resume", "r"]);
    let (status, _, stderr, _) = run_bounded(
        halubench_command(dir.path(), &args),
        Duration::from_secs(60),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the final resume finishes: {status:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let state = read_journal(&journal);
    assert!(!state.torn, "the final journal ends with a whole line");
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.path().join("r/run.toml")).expect("run.toml"))
            .expect("run.toml parses");
    let examples = manifest["selection"]["examples"]
        .as_integer()
        .expect("selection.examples") as usize;
    assert_eq!(examples, 143, "the sample's rows");
    let ids: HashSet<&str> = state
        .lines
        .iter()
        .map(|l| l["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), examples, "every example judged");
    assert_eq!(
        state.lines.len(),
        examples,
        "one line per example: none judged twice"
    );
    assert!(
        state.lines.iter().all(|l| l["error"].is_null()),
        "every judgement is a reply"
    );
    let summary = crate::read_json(&dir.path().join("r/summary.json"));
    assert_eq!(summary["n"], 143);

    let total = server.total_attempts();
    let repaid = total - examples;
    eprintln!(
        "kill -9 soak: {kills} kills ({kills_in_flight} with calls in flight; \
         {finished_first} runs finished before their kill, {fresh_starts} started with --out), \
         {} journal lines, {total} calls for {examples} examples, {repaid} re-paid, at most {} \
         at one kill (iteration {}), {torn_seen} torn last lines seen, {:.1}s",
        state.lines.len(),
        most_repaid.1,
        most_repaid.0,
        started.elapsed().as_secs_f64()
    );
    eprintln!("{}", timeline.join("\n"));
    assert!(
        repaid <= CONCURRENCY * KILLS,
        "{repaid} calls paid twice: more than were in flight"
    );
    assert!(
        kills_in_flight > 0,
        "at least one kill landed with calls in flight"
    );
}

#[test]
fn a_run_directory_in_use_is_refused_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = fake_openai::serve(Arc::new(|_, _| Fault::Late(Duration::from_millis(200))));
    let base = judge_args(&server.base_url, "demo", "2");

    let mut args = base.clone();
    args.extend_from_slice(&["--out", "r"]);
    let log = tempfile::NamedTempFile::new().expect("stderr file");
    let mut first = halubench_command(dir.path(), &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("reopen"))
        .spawn()
        .expect("spawn");
    let pid = first.id();
    let journal = dir.path().join("r/judgements.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_journal(&journal).lines.is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !read_journal(&journal).lines.is_empty(),
        "the first run started judging"
    );

    let mut resume = base.clone();
    resume.extend_from_slice(&["--resume", "r"]);
    let mut out = base.clone();
    out.extend_from_slice(&["--out", "r"]);
    let score = vec!["score", "r"];
    for (name, args) in [
        ("run --resume", resume),
        ("run --out", out),
        ("score", score),
    ] {
        let (status, _, stderr, elapsed) = run_bounded(
            halubench_command(dir.path(), &args),
            Duration::from_secs(20),
        );
        assert!(
            status.is_some_and(|s| !s.success()),
            "{name} on a directory in use: {status:?}: {stderr}"
        );
        assert!(
            elapsed < Duration::from_secs(5),
            "{name} is refused at once, not after {elapsed:?}"
        );
        assert!(
            stderr.contains("in use") && stderr.contains(&pid.to_string()),
            "{name} names the holder, pid {pid}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        eprintln!("in use: {name} refused in {:.2}s", elapsed.as_secs_f64());
    }

    let status = wait_until(&mut first, Instant::now() + Duration::from_secs(60));
    if status.is_none() {
        let _ = first.kill();
        let _ = first.wait();
    }
    let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the first run finishes: {status:?}: {stderr}"
    );
    let state = read_journal(&journal);
    assert!(!state.torn);
    assert_eq!(state.lines.len(), 60, "exactly the demo's rows");
    let ids: HashSet<&str> = state
        .lines
        .iter()
        .map(|l| l["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 60, "no example judged twice");
    assert_eq!(
        server.total_attempts(),
        60,
        "the refused commands made no call"
    );
}
