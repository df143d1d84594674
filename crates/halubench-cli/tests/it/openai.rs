//! The OpenAI-compatible judge through the real binary, against a fake server with faults.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::fake_openai::{self, Fault};
use crate::{read_json, stderr};

/// `halubench run --judge openai` on the demo, with an API key in the environment.
pub fn openai_run(dir: &Path, base_url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "--judge",
        "openai",
        "--model",
        "lynx-test",
        "--base-url",
        base_url,
        "--timeout",
        "1",
        "--cache-dir",
        "cache",
    ];
    args.extend_from_slice(extra);
    crate::halubench_command(dir, &args)
        .env("OPENAI_API_KEY", "sk-test-SECRET-key-0000")
        .output()
        .expect("run halubench")
}

/// A run of the openai judge on the real sample rows into `<tempdir>/<out>`, through a
/// fault-free fake server; the server is returned too, for tests that call it again.
pub fn sample_openai_run(out: &str, extra: &[&str]) -> (fake_openai::FakeOpenAi, TempDir) {
    let server = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = crate::sample_path();
    let mut args = vec!["--dataset", &sample, "--out", out];
    args.extend_from_slice(extra);
    let ran = openai_run(dir.path(), &server.base_url, &args);
    assert!(ran.status.success(), "{}", stderr(&ran));
    (server, dir)
}

/// id → (verdict, raw) from a run's journal, last line per id.
fn verdicts(run: &Path) -> BTreeMap<String, (String, String)> {
    std::fs::read_to_string(run.join("judgements.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (
                v["id"].as_str().expect("id").to_string(),
                (
                    v["verdict"].as_str().expect("verdict").to_string(),
                    v["raw"].as_str().expect("raw").to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn faults_cost_nothing_but_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clean = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let out = openai_run(
        dir.path(),
        &clean.base_url,
        &["--out", "clean", "--no-cache"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(clean.total_attempts(), 60);

    // Every example meets one or two faults before its answer.
    let faulty = fake_openai::serve(Arc::new(|d, attempt| match (d % 7, attempt) {
        (0, 1) => Fault::Throttle,
        (1, 1) => Fault::Status(500),
        (1, 2) => Fault::Status(502),
        (2, 1) => Fault::Status(503),
        (3, 1) => Fault::Slow(Duration::from_millis(1500)),
        (4, 1) => Fault::Reset,
        (5, 1) => Fault::MalformedBody,
        (6, 1) => Fault::EmptyChoices,
        _ => Fault::None,
    }));
    let out = openai_run(
        dir.path(),
        &faulty.base_url,
        &["--out", "faulty", "--concurrency", "16", "--no-cache"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let (a, b) = (
        verdicts(&dir.path().join("clean")),
        verdicts(&dir.path().join("faulty")),
    );
    assert_eq!(a.len(), 60);
    assert_eq!(a, b, "a faulty run ends exactly where a clean one does");
    let lines = std::fs::read_to_string(dir.path().join("faulty/judgements.jsonl"))
        .expect("journal")
        .lines()
        .count();
    assert_eq!(lines, 60, "no example lost or duplicated");
    // Bounded: at most two faults per example, so at most three attempts each.
    let attempts = faulty.attempts.lock().expect("lock").clone();
    assert!(attempts.values().all(|&n| n <= 3), "{attempts:?}");
    assert!(faulty.total_attempts() > 60, "faults really happened");
    let summary = read_json(&dir.path().join("faulty/summary.json"));
    assert_eq!(summary, read_json(&dir.path().join("clean/summary.json")));
    assert!(stderr(&out).contains("throttled"), "{}", stderr(&out));
}

#[test]
fn a_permanent_rejection_is_recorded_once_and_a_dead_end_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 400 for a third of the prompts (never retried); 503 forever for another third.
    let server = fake_openai::serve(Arc::new(|d, _| match d % 3 {
        0 => Fault::Status(400),
        1 => Fault::Status(503),
        _ => Fault::None,
    }));
    let started = Instant::now();
    let out = openai_run(
        dir.path(),
        &server.base_url,
        &[
            "--out",
            "r",
            "--max-attempts",
            "3",
            "--no-cache",
            "--concurrency",
            "32",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "a run never dies on a judge fault, and says it is incomplete: {}",
        stderr(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "and never wedges"
    );
    let attempts: HashMap<u64, usize> = server.attempts.lock().expect("lock").clone();
    for (d, n) in &attempts {
        let expected_max = match d % 3 {
            0 => 1,
            1 => 3,
            _ => 1,
        };
        assert!(*n <= expected_max, "prompt {d}: {n} attempts");
    }
    let journal = std::fs::read_to_string(dir.path().join("r/judgements.jsonl")).expect("journal");
    let errors: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .filter(|v: &serde_json::Value| !v["error"].is_null())
        .collect();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| e["verdict"] == "INVALID"));
    assert!(
        errors
            .iter()
            .any(|e| e["error"].as_str().is_some_and(|m| m.contains("HTTP 400")))
    );
    assert!(
        stderr(&out).contains("--resume"),
        "says how to retry: {}",
        stderr(&out)
    );
    let summary = read_json(&dir.path().join("r/summary.json"));
    assert_eq!(summary["n"], 60, "failed examples still count, as wrong");
}

#[test]
fn the_response_cache_makes_a_rerun_free_and_a_changed_parameter_misses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = fake_openai::serve(Arc::new(|_, _| Fault::None));
    assert!(
        openai_run(dir.path(), &server.base_url, &["--out", "a", "--cache"])
            .status
            .success()
    );
    assert_eq!(server.total_attempts(), 60);
    assert!(
        openai_run(dir.path(), &server.base_url, &["--out", "b", "--cache"])
            .status
            .success()
    );
    assert_eq!(
        server.total_attempts(),
        60,
        "second run served from the cache"
    );
    assert_eq!(
        verdicts(&dir.path().join("a")),
        verdicts(&dir.path().join("b"))
    );
    assert!(
        openai_run(
            dir.path(),
            &server.base_url,
            &["--out", "c", "--max-tokens", "599", "--cache"]
        )
        .status
        .success()
    );
    assert_eq!(
        server.total_attempts(),
        120,
        "another max_tokens is another request"
    );
}

#[test]
fn the_api_key_is_sent_but_never_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = fake_openai::serve(Arc::new(|d, _| {
        if d % 5 == 1 {
            Fault::Status(401)
        } else {
            Fault::None
        }
    }));
    let out = openai_run(
        dir.path(),
        &server.base_url,
        &["--out", "r", "--header", "X-Team: secret-team-header"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "rejected calls: {}",
        stderr(&out)
    );
    assert!(
        server
            .auth
            .lock()
            .expect("lock")
            .iter()
            .all(|h| h.ends_with("Bearer sk-test-SECRET-key-0000"))
    );
    let mut everything = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for entry in std::fs::read_dir(dir.path().join("r")).expect("dir") {
        // Charts are binary: read every file as bytes.
        everything +=
            &String::from_utf8_lossy(&std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    assert!(!everything.contains("sk-test-SECRET"), "key leaked");
    assert!(
        !everything.contains("secret-team-header"),
        "header value leaked"
    );
    let manifest = std::fs::read_to_string(dir.path().join("r/run.toml")).expect("manifest");
    assert!(
        manifest.contains("OPENAI_API_KEY") && manifest.contains("X-Team"),
        "{manifest}"
    );
    let journal = std::fs::read_to_string(dir.path().join("r/judgements.jsonl")).expect("journal");
    assert!(
        journal.contains("lynx-test-served"),
        "records the model the server reports"
    );
    // The fake judge answers some prompts without a verdict; the journal says why.
    assert!(
        journal.contains(r#""verdict":"INVALID""#)
            && journal.contains(r#""invalid_reason":"no_score""#)
    );
    let summary = read_json(&dir.path().join("r/summary.json"));
    assert!(
        summary["invalid_reasons"]["no_score"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{summary}"
    );
}

#[test]
fn kill_9_then_resume_loses_nothing_and_repeats_nothing_finished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = fake_openai::serve(Arc::new(|_, _| Fault::Late(Duration::from_millis(100))));
    let mut child = Command::new(env!("CARGO_BIN_EXE_halubench"))
        .args([
            "run",
            "--judge",
            "openai",
            "--model",
            "m",
            "--base-url",
            &slow.base_url,
            "--out",
            "r",
            "--concurrency",
            "2",
            "--no-cache",
        ])
        .current_dir(dir.path())
        .env("HF_HUB_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let journal = dir.path().join("r/judgements.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&journal).map_or(0, |t| t.lines().count()) < 10
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let before = verdicts(&dir.path().join("r"));
    assert!(
        before.len() >= 10 && before.len() < 60,
        "killed mid-run: {}",
        before.len()
    );

    let fast = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let out = Command::new(env!("CARGO_BIN_EXE_halubench"))
        .args([
            "run",
            "--judge",
            "openai",
            "--model",
            "m",
            "--base-url",
            &fast.base_url,
            "--resume",
            "r",
            "--no-cache",
        ])
        .current_dir(dir.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("resume");
    // The base URL differs between the two servers, so resume must refuse that...
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("different run"), "{}", stderr(&out));
    assert_eq!(fast.total_attempts(), 0);

    // ...and accept the same judge: restart the slow server's twin on the same address is
    // not possible, so resume against the original (still running) slow server.
    let out = Command::new(env!("CARGO_BIN_EXE_halubench"))
        .args([
            "run",
            "--judge",
            "openai",
            "--model",
            "m",
            "--base-url",
            &slow.base_url,
            "--resume",
            "r",
            "--no-cache",
            "--concurrency",
            "8",
        ])
        .current_dir(dir.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("resume");
    assert!(out.status.success(), "{}", stderr(&out));
    let after = verdicts(&dir.path().join("r"));
    assert_eq!(after.len(), 60);
    for (id, verdict) in &before {
        assert_eq!(&after[id], verdict, "finished judgements survive");
    }
    // Each prompt was sent once before the kill or once after, apart from calls in flight
    // at the kill (at most the concurrency of 2).
    let attempts = slow.attempts.lock().expect("lock").clone();
    let repeated = attempts.values().filter(|&&n| n > 1).count();
    assert!(repeated <= 2, "{repeated} prompts sent twice");
    assert_eq!(read_json(&dir.path().join("r/summary.json"))["n"], 60);
}

fn write_prices(dir: &Path) {
    // 20 completion tokens a call (what the fake server reports) at 1 USD a token.
    std::fs::write(
        dir.join("prices.toml"),
        "[lynx-test]\ninput_per_mtok = 0.0\noutput_per_mtok = 1000000.0\n",
    )
    .expect("prices");
}

#[test]
fn dry_run_estimates_and_spends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_prices(dir.path());
    let server = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let out = openai_run(
        dir.path(),
        &server.base_url,
        &["--dry-run", "--prices", "prices.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("calls: 60;"), "{text}");
    assert!(
        text.contains("at most 36000 completion"),
        "60 calls x 600 max tokens: {text}"
    );
    assert!(text.contains("cost: at most 36000.0000 USD"), "{text}");
    assert_eq!(server.total_attempts(), 0);
    assert!(
        !dir.path().join("reports").exists(),
        "a dry run writes no report"
    );
}

#[test]
fn max_cost_stops_cleanly_and_resume_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_prices(dir.path());
    let server = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let args = [
        "--out",
        "r",
        "--prices",
        "prices.toml",
        "--max-cost",
        "100",
        "--concurrency",
        "2",
        "--no-cache",
    ];
    let out = openai_run(dir.path(), &server.base_url, &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stopped at --max-cost"),
        "{}",
        stderr(&out)
    );
    let judged = verdicts(&dir.path().join("r")).len();
    // 20 USD a call: the fifth reaches 100; at most one more call was in flight.
    assert!((5..=6).contains(&judged), "{judged}");
    let summary = read_json(&dir.path().join("r/summary.json"));
    assert_eq!(summary["cost_usd"].as_f64(), Some(20.0 * judged as f64));
    assert_eq!(summary["tokens"]["completion_tokens"], 20 * judged as u64);

    let out = openai_run(
        dir.path(),
        &server.base_url,
        &[
            "--resume",
            "r",
            "--prices",
            "prices.toml",
            "--concurrency",
            "2",
            "--no-cache",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(verdicts(&dir.path().join("r")).len(), 60);
    assert_eq!(server.total_attempts(), 60, "nothing judged twice");
}

#[test]
fn a_spent_retry_budget_stops_the_run_instead_of_wedging() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = fake_openai::serve(Arc::new(|_, _| Fault::Status(503)));
    let out = openai_run(
        dir.path(),
        &server.base_url,
        &[
            "--out",
            "r",
            "--retry-budget",
            "4",
            "--max-attempts",
            "3",
            "--concurrency",
            "1",
            "--no-cache",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("retry budget is spent"),
        "{}",
        stderr(&out)
    );
    // 4 retries over the run, plus one first attempt per example started.
    assert!(
        server.total_attempts() <= 4 + 3,
        "{}",
        server.total_attempts()
    );
    assert!(verdicts(&dir.path().join("r")).len() < 60);
}

/// Two different judges (a model behind an endpoint, the baseline) on the real sample rows,
/// compared: both named, tested per task.
#[test]
fn compare_sets_an_endpoint_judge_beside_the_baseline() {
    let (_server, dir) = sample_openai_run("model", &[]);
    let sample = crate::sample_path();
    let baseline = crate::halubench(dir.path(), &["run", "--dataset", &sample, "--out", "base"]);
    assert!(baseline.status.success(), "{}", stderr(&baseline));
    let compared = crate::halubench(dir.path(), &["compare", "base", "model", "--out", "cmp"]);
    assert!(compared.status.success(), "{}", stderr(&compared));
    let text = crate::stdout(&compared);
    assert!(
        text.contains("## openai lynx-test against baseline"),
        "{text}"
    );
    let pubmed = text
        .lines()
        .find(|l| l.starts_with("| PubMedQA |"))
        .expect("a PubMedQA row of the paired table");
    // task, difference, interval, two counts, McNemar p, Holm p.
    let cells: Vec<&str> = pubmed.split('|').map(str::trim).collect();
    assert_eq!(cells.len(), 9, "{pubmed}");
    // The difference is (only the model right − only the baseline right) over the 29 rows.
    let count = |i: usize| cells[i].parse::<i64>().expect("a count");
    let (base_only, model_only) = (count(4), count(5));
    assert!(base_only + model_only > 0, "{pubmed}");
    let expected = format!("{:+.1}", (model_only - base_only) as f64 / 29.0 * 100.0);
    assert_eq!(cells[2], expected, "{pubmed}");
    let p: f64 = cells[6].parse().expect("a p-value");
    assert!((0.0..=1.0).contains(&p), "{pubmed}");
}

/// A key inside the base URL (`https://user:key@proxy/v1`) is sent, and recorded nowhere.
#[test]
fn credentials_inside_a_base_url_are_never_written() {
    let server = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let dir = tempfile::tempdir().expect("tempdir");
    let url = server
        .base_url
        .replace("http://", "http://me:sk-url-SECRET@");
    let out = openai_run(dir.path(), &url, &["--out", "r", "--limit", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut everything = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for entry in std::fs::read_dir(dir.path().join("r")).expect("dir") {
        everything +=
            &String::from_utf8_lossy(&std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    assert!(
        !everything.contains("sk-url-SECRET"),
        "key in the URL leaked"
    );
    let manifest = std::fs::read_to_string(dir.path().join("r/run.toml")).expect("manifest");
    assert!(manifest.contains("http://***@127.0.0.1"), "{manifest}");

    // Unreachable: the error names the URL, redacted.
    let closed = "http://me:sk-url-SECRET@127.0.0.1:9/v1";
    let failed = openai_run(dir.path(), closed, &["--out", "r2", "--limit", "1"]);
    assert!(!failed.status.success());
    let message = stderr(&failed);
    assert!(message.contains("***@127.0.0.1:9"), "{message}");
    assert!(!message.contains("sk-url-SECRET"), "{message}");
}

/// A server that returns known log-probabilities: every journaled `p_fail` is what they
/// give, and the summary's threshold-free scores are those of the journaled numbers.
#[test]
fn known_logprobs_are_journaled_as_p_fail_and_scored() {
    let (_server, dir) = sample_openai_run("r", &[]);
    let journal = std::fs::read_to_string(dir.path().join("r/judgements.jsonl")).expect("journal");
    let mut pairs: BTreeMap<String, Vec<(halubench_core::Label, f64)>> = BTreeMap::new();
    let mut scored = 0;
    for line in journal.lines() {
        let j: halubench_core::Judgement = serde_json::from_str(line).expect("judgement");
        if j.verdict == halubench_core::Verdict::Invalid {
            assert_eq!(j.p_fail, None, "no confidence without a verdict: {line}");
            continue;
        }
        let digest = fake_openai::digest_in(&j.raw).expect("the reply names its prompt");
        let (fail, pass) = fake_openai::verdict_logprobs(digest);
        let expected = fail.exp() / (fail.exp() + pass.exp());
        let p_fail = j.p_fail.expect("a p_fail");
        assert!(
            (p_fail - expected).abs() < 1e-12,
            "{p_fail} vs {expected}: {line}"
        );
        pairs
            .entry(j.task.clone())
            .or_default()
            .push((j.label, p_fail));
        scored += 1;
    }
    let summary = read_json(&dir.path().join("r/summary.json"));
    assert_eq!(summary["n_scored"], scored);
    // scikit-learn 1.x (roc_auc_score, average_precision_score, brier_score_loss with FAIL
    // as 1) on the journaled (label, p_fail) pairs of each task, dumped once from this test;
    // the p_fail values are fixed by fake_openai::verdict_logprobs and the sample rows.
    // (task, n_scored, AUROC, average precision, Brier)
    type Scores = (&'static str, usize, Option<f64>, Option<f64>, f64);
    let scikit_learn: [Scores; 6] = [
        (
            "DROP",
            12,
            Some(0.8636363636363636),
            Some(0.9841597796143251),
            0.31533930347620903,
        ),
        (
            "FinanceBench",
            18,
            Some(0.7407407407407408),
            Some(0.7420634920634921),
            0.20611301686714495,
        ),
        ("RAGTruth", 20, None, None, 0.2562370595356048),
        (
            "covidQA",
            29,
            Some(0.625),
            Some(0.6857397022489569),
            0.24373486586895873,
        ),
        (
            "halueval",
            25,
            Some(0.532051282051282),
            Some(0.5787353223308601),
            0.2705163957145449,
        ),
        (
            "pubmedQA",
            29,
            Some(0.5889423076923077),
            Some(0.569519170288401),
            0.26315416779754197,
        ),
    ];
    assert_eq!(pairs.len(), scikit_learn.len());
    for (task, n, auroc, pr_auc, brier) in scikit_learn {
        let got = &summary["tasks"][task];
        assert_eq!(got["n_scored"], n, "{task}");
        assert_eq!(pairs[task].len(), n, "{task}");
        for (key, value) in [("auroc", auroc), ("pr_auc", pr_auc), ("brier", Some(brier))] {
            let got = got[key].as_f64();
            assert!(
                match (got, value) {
                    (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                    (a, b) => a == b,
                },
                "{task} {key}: {got:?} vs scikit-learn's {value:?}"
            );
        }
        // scikit-learn has no ECE: it is checked against this crate's own computation on
        // the journaled numbers (itself checked against NumPy in halubench-score's tests).
        let expected = halubench_score::ranking::threshold_free(&pairs[task], 10).expect("scores");
        assert!((got["ece"].as_f64().unwrap_or(f64::NAN) - expected.ece).abs() < 1e-12);
    }
}
