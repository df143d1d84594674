//! Runs read back: `compare`, `gate`, `suite run`, `export`, the HTML report and the history.

use std::path::Path;

use crate::{halubench, read, sample_path, sample_run, stderr, stdout};

#[test]
fn compare_prints_the_tests_and_refuses_runs_of_other_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    sample_run(dir.path(), "strict", "0.8");
    sample_run(dir.path(), "loose", "0.5");
    let out = halubench(
        dir.path(),
        &[
            "compare",
            "strict",
            "loose",
            "--paper",
            "Lynx (8B)",
            "--out",
            "cmp",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "baseline threshold=0.8",
        "baseline threshold=0.5",
        "McNemar p",
        "Holm p",
        "## baseline threshold=0.5 against baseline threshold=0.8",
        "beside the paper's Lynx (8B)",
        // RAGTruth: the loose baseline gets 8 rows right that the strict one gets wrong.
        "| RAGTruth | +32.0 | [",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    for file in [
        "compare.md",
        "compare.json",
        "report.html",
        "accuracy.svg",
        "accuracy.png",
        "confusion-1.png",
        "confusion-2.svg",
        "roc.svg",
        "roc.png",
        "reliability.svg",
        "reliability.png",
    ] {
        let path = dir.path().join("cmp").join(file);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "{file}"
        );
    }
    // A ROC chart per task in the paper's order, except RAGTruth: the sample holds none of
    // its FAIL rows, so it has no ROC curve.
    for (i, task) in [
        "HaluEval",
        "RAGTruth",
        "FinanceBench",
        "DROP",
        "CovidQA",
        "PubMedQA",
    ]
    .iter()
    .enumerate()
    {
        let file = dir.path().join(format!("cmp/roc-task-{}.svg", i + 1));
        assert_eq!(file.exists(), *task != "RAGTruth", "{}", file.display());
    }
    let html = read(&dir.path().join("cmp/report.html"));
    assert!(html.contains("<h2>Confidence</h2>"));
    assert!(html.contains("ROC curves of p_fail on FinanceBench"));
    assert!(!html.contains("ROC curves of p_fail on RAGTruth"));
    let json: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("cmp/compare.json"))).expect("json");
    assert_eq!(json["judges"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["pairs"][0]["tasks"].as_array().map(Vec::len), Some(6));

    // Another dataset: refused, naming both files.
    assert!(
        halubench(dir.path(), &["run", "--out", "demo"])
            .status
            .success()
    );
    let refused = halubench(dir.path(), &["compare", "strict", "demo"]);
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.contains("not comparable")
            && message.contains("sha256")
            && message.contains("demo"),
        "{message}"
    );
}

/// Rewrites a run's journal so that every example of `task` it got right is now wrong.
fn plant_drop(run: &Path, task: &str) -> usize {
    let journal = run.join("judgements.jsonl");
    let mut flipped = 0;
    let lines: Vec<String> = read(&journal)
        .lines()
        .map(|line| {
            let mut j: serde_json::Value = serde_json::from_str(line).expect("judgement");
            if j["task"] == task && j["verdict"] == j["label"] {
                j["verdict"] = serde_json::json!("INVALID");
                flipped += 1;
            }
            j.to_string()
        })
        .collect();
    std::fs::write(&journal, lines.join("\n") + "\n").expect("write journal");
    flipped
}

fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for file in ["run.toml", "judgements.jsonl"] {
        std::fs::copy(from.join(file), to.join(file)).expect("copy");
    }
}

#[test]
fn gate_exits_0_when_unchanged_1_on_a_planted_drop_2_on_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    sample_run(dir.path(), "nightly-1", "0.8");
    copy_run(&dir.path().join("nightly-1"), &dir.path().join("nightly-2"));
    let gate = |candidate: &str| {
        halubench(
            dir.path(),
            &[
                "gate",
                "--baseline",
                "nightly-1",
                "--candidate",
                candidate,
                "--summary",
                "summary.md",
            ],
        )
    };

    let same = gate("nightly-2");
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert!(
        stdout(&same).starts_with("## Gate holds"),
        "{}",
        stdout(&same)
    );

    // halueval: 22 of 26 right in the baseline; all of them wrong now.
    assert_eq!(plant_drop(&dir.path().join("nightly-2"), "halueval"), 22);
    let dropped = gate("nightly-2");
    assert_eq!(dropped.status.code(), Some(1), "{}", stderr(&dropped));
    let report = stdout(&dropped);
    assert!(
        report.starts_with("## REGRESSION: HaluEval (-84.6 pp"),
        "{report}"
    );
    assert!(
        report.contains("| HaluEval | 84.6 | 0.0 | -84.6 |"),
        "{report}"
    );
    // Both outcomes went to the --summary file, as a CI job summary collects them.
    let summary = read(&dir.path().join("summary.md"));
    assert!(summary.contains("## Gate holds") && summary.contains("## REGRESSION"));

    // A call that got no reply is not a wrong verdict: an outage is an error, not a drop.
    copy_run(&dir.path().join("nightly-1"), &dir.path().join("outage"));
    let journal = dir.path().join("outage/judgements.jsonl");
    let text = read(&journal);
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut first: serde_json::Value = serde_json::from_str(&lines[0]).expect("judgement");
    first["verdict"] = serde_json::json!("INVALID");
    first["error"] = serde_json::json!("HTTP 503 after 6 attempts");
    lines[0] = first.to_string();
    std::fs::write(&journal, lines.join("\n") + "\n").expect("write");
    let outage = gate("outage");
    assert_eq!(outage.status.code(), Some(2));
    assert!(
        stderr(&outage).contains("got no reply"),
        "{}",
        stderr(&outage)
    );

    let missing = gate("no-such-run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no-such-run"),
        "{}",
        stderr(&missing)
    );
    assert!(
        halubench(dir.path(), &["run", "--out", "demo"])
            .status
            .success()
    );
    assert_eq!(gate("demo").status.code(), Some(2));
}

#[test]
fn suite_runs_each_judge_then_compares_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = format!(
        "dataset = {:?}\ntasks = [\"DROP\", \"covidQA\"]\nthreshold = 0.8\n\n\
         [[judge]]\nname = \"strict\"\njudge = \"baseline\"\n\n\
         [[judge]]\nname = \"loose\"\nthreshold = 0.5\n",
        sample_path()
    );
    std::fs::write(dir.path().join("suite.toml"), suite).expect("write suite");
    let out = halubench(dir.path(), &["suite", "run", "suite.toml", "--out", "s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let compare = read(&dir.path().join("s/comparison/compare.md"));
    // Judges under the suite's names; the shared threshold, and the judge's own one
    // replacing it (they differ on CovidQA).
    assert!(
        compare.contains("| strict | 46.2 [23.1, 69.2] | 60.0 ")
            && compare.contains("| loose | 46.2 [23.1, 69.2] | 50.0 ")
            && compare.contains("| DROP |"),
        "{compare}"
    );
    for (name, threshold) in [("strict", "0.8"), ("loose", "0.5")] {
        let manifest = read(&dir.path().join("s").join(name).join("run.toml"));
        assert!(
            manifest.contains(&format!("threshold = \"{threshold}\"")),
            "{manifest}"
        );
    }
    assert!(
        !compare.contains("HaluEval"),
        "--tasks applied to every judge"
    );
    let journal = read(&dir.path().join("s/loose/judgements.jsonl"));
    assert_eq!(journal.lines().count(), 13 + 30);

    // Again: both runs are finished, so both are resumed with nothing to do.
    let again = halubench(dir.path(), &["suite", "run", "suite.toml", "--out", "s"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("0 to judge"), "{}", stderr(&again));
    assert_eq!(read(&dir.path().join("s/loose/judgements.jsonl")), journal);

    // A misspelt flag is clap's error, with the suite file and judge named.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[judge]]\nname = \"x\"\nthreshhold = 0.5\n",
    )
    .expect("write");
    let bad = halubench(dir.path(), &["suite", "run", "bad.toml"]);
    assert_eq!(bad.status.code(), Some(1));
    let message = stderr(&bad);
    assert!(
        message.contains("bad.toml") && message.contains("`x`") && message.contains("--threshhold"),
        "{message}"
    );
}

#[test]
fn export_writes_lm_eval_samples_per_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    sample_run(dir.path(), "r", "0.8");
    let out = halubench(dir.path(), &["export", "r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let drop = read(&dir.path().join("r/lm-eval/samples_DROP.jsonl"));
    let lines: Vec<serde_json::Value> = drop
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 13);
    let correct = lines.iter().filter(|l| l["acc"] == 1.0).count();
    assert_eq!(correct, 6, "DROP accuracy 46.2% = 6/13");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["doc_id"], i);
        assert_eq!(line["target"], line["doc"]["label"]);
        assert!(
            line["doc"]["passage"]
                .as_str()
                .is_some_and(|p| !p.is_empty())
        );
        assert!(line["resps"][0][0].is_string() && line["filtered_resps"][0].is_string());
    }
}

#[test]
fn the_html_report_shows_markup_in_the_data_as_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let payload = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let rows: String = ["PASS", "FAIL"]
        .iter()
        .map(|label| {
            serde_json::json!({
                "id": format!("{label}-{payload}"),
                "source_ds": "hostile",
                "question": format!("Is it? {payload}"),
                "passage": format!("The sky is blue. {payload}"),
                "answer": format!("The sky is blue. {payload}"),
                "label": label,
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(dir.path().join("hostile.jsonl"), rows).expect("write");
    let out = halubench(
        dir.path(),
        &["run", "--dataset", "hostile.jsonl", "--out", "r"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let html = read(&dir.path().join("r/report.html"));
    assert!(!html.to_lowercase().contains("<script"), "unescaped script");
    assert!(!html.contains("<img src=x"), "unescaped img");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The one wrong verdict is listed, with its passage.
    assert!(html.contains("The sky is blue. &lt;script&gt;"), "{html}");
    assert!(html.contains("Content-Security-Policy"));
}

#[test]
fn finished_runs_append_to_the_history_which_feeds_the_trend_chart() {
    let dir = tempfile::tempdir().expect("tempdir");
    for _ in 0..2 {
        let out = halubench(dir.path(), &["run"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let history = read(&dir.path().join("reports/history.jsonl"));
    let lines: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).expect("history line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["judge"], "baseline");
    assert_eq!(lines[0]["examples"], 60);
    assert_eq!(lines[0]["overall_macro"], lines[1]["overall_macro"]);
    let newest = &lines[1]["run_id"];
    let run_dir = dir
        .path()
        .join("reports")
        .join(newest.as_str().expect("id"));
    assert!(run_dir.join("trend.svg").is_file() && run_dir.join("trend.png").is_file());
    assert!(read(&run_dir.join("report.html")).contains("Overall accuracy over the run history"));

    // A run with --out elsewhere is not part of the history unless asked.
    assert!(
        halubench(dir.path(), &["run", "--out", "elsewhere"])
            .status
            .success()
    );
    assert_eq!(
        read(&dir.path().join("reports/history.jsonl"))
            .lines()
            .count(),
        2
    );
}
