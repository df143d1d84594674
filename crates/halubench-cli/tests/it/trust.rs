//! Trust under real conditions, through the real binary: a judge that changed behind the
//! same URL, journals and histories torn mid-character, runs whose calls were all rejected,
//! flags that would have panicked, cache hits that are not spending, and re-parsing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::fake_openai::{self, Fault};
use crate::openai::openai_run as openai;
use crate::{halubench, read_json, stderr, workspace_root};

/// The demo rows as (question, passage, answer, label, task), to answer prompts by.
fn demo_rows() -> Vec<[String; 5]> {
    let text =
        std::fs::read_to_string(workspace_root().join("crates/halubench-data/src/demo.jsonl"))
            .expect("demo rows");
    text.lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).expect("json");
            ["question", "passage", "answer", "label", "source_ds"]
                .map(|key| row[key].as_str().expect("text").to_string())
        })
        .collect()
}

const PASS: &str = "{\"REASONING\": [\"supported\"], \"SCORE\": \"PASS\"}";
const FAIL: &str = "{\"REASONING\": [\"not supported\"], \"SCORE\": \"FAIL\"}";

/// A self-hosted judge that is right on every demo row, until `worse` is set: then it gets
/// every DROP and covidQA row wrong. Same URL, same model name throughout.
fn changing_judge(worse: Arc<AtomicBool>) -> fake_openai::FakeOpenAi {
    let rows = demo_rows();
    fake_openai::serve_prompts(Arc::new(move |prompt, _| {
        let Some(row) = rows.iter().find(|[question, passage, answer, ..]| {
            prompt.contains(question.as_str())
                && prompt.contains(passage.as_str())
                && prompt.contains(&format!("ANSWER:\n{answer}\n"))
        }) else {
            return Fault::Status(400);
        };
        let right = row[3] == "PASS";
        let regressed =
            worse.load(Ordering::SeqCst) && matches!(row[4].as_str(), "DROP" | "covidQA");
        Fault::Says(if right != regressed { PASS } else { FAIL })
    }))
}

#[test]
fn a_nightly_pair_sees_a_judge_that_changed_behind_the_same_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worse = Arc::new(AtomicBool::new(false));
    let server = changing_judge(worse.clone());

    let night1 = openai(dir.path(), &server.base_url, &["--out", "night1"]);
    assert!(night1.status.success(), "{}", stderr(&night1));
    let summary = read_json(&dir.path().join("night1/summary.json"));
    assert_eq!(
        summary["overall_micro"], 1.0,
        "the fake judge is right on night 1"
    );

    worse.store(true, Ordering::SeqCst);
    let night2 = openai(dir.path(), &server.base_url, &["--out", "night2"]);
    assert!(night2.status.success(), "{}", stderr(&night2));
    assert_eq!(
        server.total_attempts(),
        120,
        "night 2 asked the judge again"
    );
    let gate = halubench(
        dir.path(),
        &["gate", "--baseline", "night1", "--candidate", "night2"],
    );
    assert_eq!(gate.status.code(), Some(1), "{}", crate::stdout(&gate));
    let report = crate::stdout(&gate);
    for task in ["DROP", "CovidQA"] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(task) && l.contains("REGRESSED")),
            "{task} regressed: {report}"
        );
    }

    // With the cache asked for on both nights, night 2 is last night's replies: the reason
    // it is off by default.
    worse.store(false, Ordering::SeqCst);
    let cached = ["--cache"];
    let a = openai(
        dir.path(),
        &server.base_url,
        &[&cached[..], &["--out", "c1"]].concat(),
    );
    assert!(a.status.success(), "{}", stderr(&a));
    worse.store(true, Ordering::SeqCst);
    let b = openai(
        dir.path(),
        &server.base_url,
        &[&cached[..], &["--out", "c2"]].concat(),
    );
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(server.total_attempts(), 180, "c2 made no call");
    let gate = halubench(
        dir.path(),
        &["gate", "--baseline", "c1", "--candidate", "c2"],
    );
    assert_eq!(gate.status.code(), Some(0), "{}", crate::stdout(&gate));
    let journal = std::fs::read_to_string(dir.path().join("c2/judgements.jsonl")).expect("journal");
    assert_eq!(journal.matches("\"cached\":true").count(), 60);
}

#[test]
fn a_run_whose_every_call_was_rejected_exits_3_and_is_marked_in_the_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A wrong model name: the server is up, every call is a 404.
    let server = fake_openai::serve(Arc::new(|_, _| Fault::Status(404)));
    let out = openai(
        dir.path(),
        &server.base_url,
        &["--out", "r", "--history", "history.jsonl"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("incomplete: 60 of 60"), "{err}");
    assert!(err.contains("--resume r"), "{err}");
    assert_eq!(read_json(&dir.path().join("r/summary.json"))["n"], 60);
    let history = std::fs::read_to_string(dir.path().join("history.jsonl")).expect("history");
    let line: serde_json::Value = serde_json::from_str(history.trim()).expect("one line");
    assert_eq!(line["failed"], 60, "{line}");
    let gate = halubench(dir.path(), &["gate", "--baseline", "r", "--candidate", "r"]);
    assert_eq!(gate.status.code(), Some(2), "an outage is not a regression");
    let help = crate::stdout(&halubench(dir.path(), &["run", "--help"]));
    assert!(
        help.contains("Exit status:") && help.contains("  3  run, suite run"),
        "{help}"
    );
}

#[test]
fn a_journal_torn_inside_a_multibyte_character_costs_only_that_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(dir.path(), &["run", "--out", "r", "--history", "h.jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let journal_path = dir.path().join("r/judgements.jsonl");
    let journal = std::fs::read_to_string(&journal_path).expect("journal");
    let mut lines: Vec<&str> = journal.lines().collect();
    let last = lines.pop().expect("a line");
    // The last judgement again, with a non-ASCII reply, cut in the middle of "é".
    let mut judgement: serde_json::Value = serde_json::from_str(last).expect("json");
    judgement["raw"] = "réponse – ünïcode".into();
    let whole = judgement.to_string();
    let cut = whole.find('é').expect("é") + 1;
    assert!(!whole.is_char_boundary(cut));
    let mut torn = lines.join("\n").into_bytes();
    torn.push(b'\n');
    torn.extend_from_slice(&whole.as_bytes()[..cut]);
    std::fs::write(&journal_path, &torn).expect("write");

    let scored = halubench(dir.path(), &["score", "r"]);
    assert!(scored.status.success(), "{}", stderr(&scored));
    assert!(
        stderr(&scored).contains("torn last line"),
        "{}",
        stderr(&scored)
    );
    assert_eq!(read_json(&dir.path().join("r/summary.json"))["n"], 59);

    // A torn history line: the report and its trend chart still come.
    let mut history = std::fs::read(dir.path().join("h.jsonl")).expect("history");
    history.extend_from_slice(&"{\"run_id\": \"x – é".as_bytes()[..16]);
    std::fs::write(dir.path().join("h.jsonl"), &history).expect("write");

    let resumed = halubench(
        dir.path(),
        &["run", "--resume", "r", "--history", "h.jsonl"],
    );
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("1 to judge"),
        "{}",
        stderr(&resumed)
    );
    let journal = std::fs::read(&journal_path).expect("journal");
    assert!(journal.ends_with(b"\n"));
    assert_eq!(
        journal
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        60
    );
    assert_eq!(read_json(&dir.path().join("r/summary.json"))["n"], 60);
    assert!(dir.path().join("r/report.html").is_file());
    assert!(
        dir.path().join("r/trend.svg").is_file(),
        "the trend survives a torn line"
    );
    assert!(
        stderr(&resumed).contains("h.jsonl: line"),
        "{}",
        stderr(&resumed)
    );
}

#[test]
fn absurd_numbers_are_refused_naming_the_flag_never_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[&str], &str); 9] = [
        (&["run", "--timeout", "1e20"], "--timeout"),
        (&["run", "--timeout=-1"], "--timeout"),
        (&["run", "--max-wait", "inf"], "--max-wait"),
        (
            &["run", "--prices", "p.toml", "--max-cost", "NaN"],
            "--max-cost",
        ),
        (&["run", "--temperature=-0.5"], "--temperature"),
        (&["run", "--threshold", "1.5"], "--threshold"),
        (
            &[
                "gate",
                "--baseline",
                "a",
                "--candidate",
                "b",
                "--alpha",
                "0",
            ],
            "--alpha",
        ),
        (
            &[
                "gate",
                "--baseline",
                "a",
                "--candidate",
                "b",
                "--max-drop",
                "NaN",
            ],
            "--max-drop",
        ),
        (&["compare", "a", "--tolerance=-2"], "--tolerance"),
    ];
    for (args, flag) in cases {
        let out = halubench(dir.path(), args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // A price table with an infinite price.
    std::fs::write(
        dir.path().join("p.toml"),
        "[lynx-test]\ninput_per_mtok = inf\noutput_per_mtok = 1.0\n",
    )
    .expect("write");
    let out = openai(
        dir.path(),
        "http://127.0.0.1:9/v1",
        &["--prices", "p.toml", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("p.toml"), "{}", stderr(&out));
}

#[test]
fn cache_hits_are_not_spending() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 20 completion tokens a call at 1 USD a token: 20 USD a call.
    std::fs::write(
        dir.path().join("prices.toml"),
        "[lynx-test]\ninput_per_mtok = 0.0\noutput_per_mtok = 1000000.0\n",
    )
    .expect("prices");
    let server = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let first = openai(
        dir.path(),
        &server.base_url,
        &["--out", "a", "--cache", "--prices", "prices.toml"],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(
        read_json(&dir.path().join("a/summary.json"))["cost_usd"],
        1200.0
    );
    // Every reply is cached: a budget below one call does not stop the run.
    let second = openai(
        dir.path(),
        &server.base_url,
        &[
            "--out",
            "b",
            "--cache",
            "--prices",
            "prices.toml",
            "--max-cost",
            "10",
        ],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(server.total_attempts(), 60);
    let summary = read_json(&dir.path().join("b/summary.json"));
    assert_eq!(summary["n"], 60);
    assert_eq!(summary["cost_usd"], 0.0);
    assert_eq!(summary["cost_avoided_usd"], 1200.0);
    assert!(
        stderr(&second).contains("cost avoided: 1200.0000 USD"),
        "{}",
        stderr(&second)
    );
}

#[test]
fn score_reparse_reads_stored_replies_with_the_current_parser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = fake_openai::serve(Arc::new(|_, _| Fault::Says(PASS)));
    let out = openai(
        dir.path(),
        &server.base_url,
        &["--out", "r", "--limit", "2"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // What an older parser might have written: a readable reply recorded as INVALID.
    let path = dir.path().join("r/judgements.jsonl");
    let journal = std::fs::read_to_string(&path).expect("journal");
    let mut lines: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    lines[0]["verdict"] = "INVALID".into();
    lines[0]["invalid_reason"] = "no_score".into();
    let old: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, &old).expect("write");

    let out = halubench(dir.path(), &["score", "r", "--reparse"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reparse: 1 of 12 verdicts changed"),
        "{}",
        stderr(&out)
    );
    let original =
        std::fs::read_to_string(dir.path().join("r/judgements.jsonl.orig")).expect("orig");
    assert_eq!(original, old, "the original journal is kept");
    let summary = read_json(&dir.path().join("r/summary.json"));
    assert_eq!(summary["invalid"], 0);

    let baseline = halubench(dir.path(), &["run", "--out", "b", "--limit", "1"]);
    assert!(baseline.status.success(), "{}", stderr(&baseline));
    let refused = halubench(dir.path(), &["score", "b", "--reparse"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("baseline"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn resume_refuses_a_run_of_another_harness_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(dir.path(), &["run", "--out", "r", "--limit", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest_path = dir.path().join("r/run.toml");
    let manifest = std::fs::read_to_string(&manifest_path).expect("manifest");
    let version = format!("harness_version = \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(manifest.contains(&version), "{manifest}");
    std::fs::write(
        &manifest_path,
        manifest.replace(&version, "harness_version = \"0.0.1\""),
    )
    .expect("write");
    let out = halubench(dir.path(), &["run", "--resume", "r", "--limit", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("harness version 0.0.1 (run)"),
        "{}",
        stderr(&out)
    );
}
