//! End-to-end tests of the real `halubench` binary.

mod analysis;
mod fake_openai;
mod hostile;
mod kill_resume;
#[cfg(feature = "local")]
mod local;
mod openai;
mod paper_suite;
mod ragas;
#[cfg(feature = "local")]
mod rules;
// Python's Llama-3 token counts of the longest sample prompts, shared with halubench-candle.
#[cfg(feature = "local")]
#[path = "../../../halubench-candle/tests/it/sample_prompt_lengths.rs"]
mod sample_prompt_lengths;
mod snapshots;
mod trust;
mod votes;
mod workflow;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real binary in `dir`, kept away from the user's caches, settings and any network.
pub fn halubench_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_halubench"));
    command
        .args(args)
        .current_dir(dir)
        .env("HF_HOME", dir.join("hf-home"))
        .env("HF_HUB_OFFLINE", "1")
        // A reply cached by an earlier test run must not stand in for the judge under test.
        .env("HALUBENCH_CACHE_DIR", dir.join("response-cache"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("HALUBENCH_REGISTRY")
        .env_remove("HALUBENCH_REPORTS_DIR")
        .env_remove("GITHUB_STEP_SUMMARY");
    command
}

pub fn halubench(dir: &Path, args: &[&str]) -> Output {
    halubench_command(dir, args)
        .output()
        .expect("run halubench")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn sample_path() -> String {
    workspace_root()
        .join("../shared/data/halubench-sample/test-00000-of-00001.parquet")
        .display()
        .to_string()
}

/// A file scripts/fetch-test-models.sh fetches from PyPI into $HALUBENCH_TOOLS (default
/// .tools/), fetched now if this machine lacks it; `relative` to that directory.
pub fn test_model_file(relative: &str) -> PathBuf {
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let tools = std::env::var_os("HALUBENCH_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools"));
    let path = tools.join(relative);
    let _one_at_a_time = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    if !path.is_file() {
        let status = Command::new("bash")
            .arg(workspace_root().join("scripts/fetch-test-models.sh"))
            .env("HALUBENCH_TOOLS", &tools)
            .status()
            .expect("run scripts/fetch-test-models.sh");
        assert!(status.success(), "scripts/fetch-test-models.sh failed");
    }
    path
}

/// A baseline run of the real sample rows into `dir/name`.
pub fn sample_run(dir: &Path, name: &str, threshold: &str) {
    let out = halubench(
        dir,
        &[
            "run",
            "--dataset",
            &sample_path(),
            "--threshold",
            threshold,
            "--out",
            name,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

#[test]
fn demo_run_writes_every_report_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(dir.path(), &["run", "--out", "r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = dir.path().join("r");

    let journal = std::fs::read_to_string(run.join("judgements.jsonl")).expect("journal");
    let lines: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line is json"))
        .collect();
    assert_eq!(lines.len(), 60);
    for key in ["id", "task", "label", "verdict", "raw", "latency_ms"] {
        assert!(
            lines.iter().all(|l| !l[key].is_null()),
            "every line has {key}"
        );
    }

    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["n"], 60);
    let tasks = summary["tasks"].as_object().expect("tasks");
    assert_eq!(tasks.len(), 6);
    let correct: u64 = tasks
        .values()
        .map(|t| t["correct"].as_u64().expect("correct"))
        .sum();
    let journal_correct = lines.iter().filter(|l| l["label"] == l["verdict"]).count() as u64;
    assert_eq!(correct, journal_correct, "summary agrees with the journal");
    let mean: f64 = tasks
        .values()
        .map(|t| t["accuracy"].as_f64().expect("acc"))
        .sum::<f64>()
        / 6.0;
    assert!((summary["overall_macro"].as_f64().expect("macro") - mean).abs() < 1e-12);

    let md = std::fs::read_to_string(run.join("summary.md")).expect("md");
    assert!(
        md.contains(
            "| metric | HaluEval | RAGTruth | FinanceBench | DROP | CovidQA | PubMedQA | Overall |"
        ),
        "{md}"
    );
    let csv = std::fs::read_to_string(run.join("summary.csv")).expect("csv");
    assert!(
        csv.starts_with("metric,HaluEval,RAGTruth,FinanceBench,DROP,CovidQA,PubMedQA,Overall\n"),
        "{csv}"
    );

    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(run.join("run.toml")).expect("toml"))
            .expect("parse");
    assert_eq!(manifest["dataset"]["name"].as_str(), Some("demo"));
    assert_eq!(
        manifest["dataset"]["sha256"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(manifest["judge"]["name"].as_str(), Some("baseline"));
    assert_eq!(
        manifest["judge"]["settings"]["threshold"].as_str(),
        Some("0.8")
    );
    assert!(manifest["finished_at"].as_str().is_some());
    assert!(manifest["harness_version"].as_str().is_some());
    assert!(stdout(&out).contains("Overall"), "prints the table");
}

#[test]
fn sample_run_reports_143_rows_with_the_documented_task_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(
        dir.path(),
        &["run", "--dataset", &sample_path(), "--out", "r"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("repeats row 56 exactly"),
        "the repeated row is reported"
    );
    let summary = read_json(&dir.path().join("r/summary.json"));
    assert_eq!(summary["n"], 143);
    for (task, n) in [
        ("DROP", 13),
        ("FinanceBench", 20),
        ("RAGTruth", 25),
        ("covidQA", 30),
        ("halueval", 26),
        ("pubmedQA", 29),
    ] {
        assert_eq!(summary["tasks"][task]["n"], n, "{task}");
    }
}

#[test]
fn tasks_limit_and_seed_select_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = |out: &'static str, seed: &'static str| {
        vec![
            "run",
            "--tasks",
            "DROP,covidQA",
            "--limit",
            "3",
            "--seed",
            seed,
            "--out",
            out,
        ]
    };
    let ids = |run: &str| {
        let mut ids: Vec<String> =
            std::fs::read_to_string(dir.path().join(run).join("judgements.jsonl"))
                .expect("journal")
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).expect("json")["id"]
                        .as_str()
                        .expect("id")
                        .to_string()
                })
                .collect();
        ids.sort();
        ids
    };
    for (out, seed) in [("a", "1"), ("b", "1"), ("c", "2")] {
        let o = halubench(dir.path(), &args(out, seed));
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(ids("a").len(), 6);
    assert!(
        ids("a")
            .iter()
            .all(|id| id.starts_with("demo-drop") || id.starts_with("demo-covidqa"))
    );
    assert_eq!(ids("a"), ids("b"));
    assert_ne!(ids("a"), ids("c"));
}

#[test]
fn bad_input_exits_non_zero_with_a_clear_error_and_no_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fake.parquet"), "not parquet at all").expect("write");
    std::fs::write(
        dir.path().join("bad-label.csv"),
        "id,passage,question,answer,label,source_ds\nx1,p,q,a,MAYBE,DROP\n",
    )
    .expect("write");
    let cases: [(&[&str], &str); 5] = [
        (
            &["run", "--dataset", "fake.parquet"],
            "fake.parquet: not a parquet file",
        ),
        (
            &["run", "--dataset", "bad-label.csv"],
            "row 1 (id \"x1\"): label is \"MAYBE\"",
        ),
        (
            &["run", "--dataset", "no-such-dataset"],
            "unknown dataset `no-such-dataset`",
        ),
        (&["run", "--tasks", "covidqa"], "did you mean `covidQA`"),
        (
            &["datasets", "fetch", "halubench"],
            "is not in the Hugging Face cache",
        ),
    ];
    for (args, expected) in cases {
        let out = halubench(dir.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Nothing half-written is left behind by a run that never started.
    assert!(!dir.path().join("reports").exists());
}

#[test]
fn an_existing_run_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        halubench(dir.path(), &["run", "--out", "r"])
            .status
            .success()
    );
    let before = std::fs::read(dir.path().join("r/judgements.jsonl")).expect("journal");
    let again = halubench(dir.path(), &["run", "--out", "r"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already holds a run"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read(dir.path().join("r/judgements.jsonl")).expect("journal"),
        before
    );

    // Two runs in the default location get distinct directories.
    assert!(halubench(dir.path(), &["run"]).status.success());
    assert!(halubench(dir.path(), &["run"]).status.success());
    assert_eq!(
        std::fs::read_dir(dir.path().join("reports"))
            .expect("reports")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count(),
        2
    );
}

#[test]
fn score_rebuilds_the_summary_from_a_journal_with_a_torn_last_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(
        halubench(dir.path(), &["run", "--out", "r"])
            .status
            .success()
    );
    let run = dir.path().join("r");
    let original = read_json(&run.join("summary.json"));

    // Simulate a crash: summaries never written, last journal line cut in half.
    for f in ["summary.json", "summary.md", "summary.csv"] {
        std::fs::remove_file(run.join(f)).expect("remove");
    }
    let journal = std::fs::read_to_string(run.join("judgements.jsonl")).expect("journal");
    let keep = journal.trim_end().rfind('\n').expect("several lines") + 1;
    let last = &journal[keep..];
    std::fs::write(
        run.join("judgements.jsonl"),
        format!("{}{}", &journal[..keep], &last[..last.len() / 2]),
    )
    .expect("tear");

    let out = halubench(dir.path(), &["score", "r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("torn last line"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("59 of the run's 60"),
        "{}",
        stderr(&out)
    );
    let rescored = read_json(&run.join("summary.json"));
    assert_eq!(rescored["n"], 59);

    // With the journal whole again, scoring reproduces the run's own summary exactly.
    std::fs::write(run.join("judgements.jsonl"), journal).expect("restore");
    assert!(halubench(dir.path(), &["score", "r"]).status.success());
    assert_eq!(read_json(&run.join("summary.json")), original);
}

#[test]
fn secrets_in_the_environment_never_reach_output_or_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "hf_SECRET_do_not_print_1234";
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_halubench"))
            .args(args)
            .current_dir(dir.path())
            .env("HF_HOME", dir.path().join("hf-home"))
            .env("HF_TOKEN", secret)
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .env("HALUBENCH_HUB_TIMEOUT", "2")
            .output()
            .expect("run")
    };
    let fetch = run(&["datasets", "fetch", "halubench"]);
    assert_eq!(fetch.status.code(), Some(1));
    let ok = run(&["run", "--out", "r"]);
    assert!(ok.status.success());
    let mut everything = format!(
        "{}{}{}{}",
        stdout(&fetch),
        stderr(&fetch),
        stdout(&ok),
        stderr(&ok)
    );
    for entry in std::fs::read_dir(dir.path().join("r")).expect("run dir") {
        // Charts are binary: read every file as bytes.
        everything +=
            &String::from_utf8_lossy(&std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    assert!(!everything.contains(secret));
    assert!(
        everything.contains("cannot be reached"),
        "the fetch really tried: {everything}"
    );
}

#[test]
fn datasets_inspect_and_list_describe_the_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(dir.path(), &["datasets", "inspect", &sample_path()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("rows:    143"), "{text}");
    let covid = text
        .lines()
        .find(|l| l.starts_with("covidQA"))
        .expect("covidQA row");
    let cells: Vec<&str> = covid.split_whitespace().collect();
    assert_eq!(&cells[1..4], ["30", "14", "16"], "{covid}");

    let list = halubench(dir.path(), &["datasets", "list"]);
    assert!(list.status.success());
    let text = stdout(&list);
    assert!(
        text.contains("demo") && text.contains("hf://datasets/PatronusAI/HaluBench@"),
        "{text}"
    );
}

#[test]
fn help_explains_the_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(dir.path(), &["run", "--help"]);
    let text = stdout(&out);
    for flag in [
        "--dataset",
        "--judge",
        "--tasks",
        "--limit",
        "--seed",
        "--out",
        "--concurrency",
    ] {
        assert!(text.contains(flag), "{flag} in {text}");
    }
}

#[test]
fn the_baseline_gives_a_confidence_and_the_summary_scores_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(dir.path(), &["run", "--out", "r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let journal = std::fs::read_to_string(dir.path().join("r/judgements.jsonl")).expect("journal");
    for line in journal.lines() {
        let judgement: serde_json::Value = serde_json::from_str(line).expect("json");
        let p = judgement["p_fail"]
            .as_f64()
            .expect("a p_fail on every line");
        assert!((0.0..=1.0).contains(&p), "{line}");
        // The verdict thresholds the same score: FAIL at or above 1 − threshold (0.8), or
        // on a stray number whatever the share.
        if p > 0.2 + 1e-12 {
            assert_eq!(judgement["verdict"], "FAIL", "{line}");
        }
    }
    let summary = read_json(&dir.path().join("r/summary.json"));
    assert_eq!(summary["n_scored"], 60);
    for key in ["auroc", "pr_auc", "brier", "ece"] {
        let value = summary[key].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&value), "{key}: {summary}");
        for (task, scores) in summary["tasks"].as_object().expect("tasks") {
            assert!(scores[key].is_number(), "{task} {key}: {scores}");
        }
    }
    let md = std::fs::read_to_string(dir.path().join("r/summary.md")).expect("md");
    assert!(md.contains("| AUROC |"), "{md}");
}
