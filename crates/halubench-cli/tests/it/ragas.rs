//! `--judge ragas` through the real binary on the 143 sample rows, against a scripted
//! OpenAI-compatible server on loopback whose answers are a pure function of what it is
//! asked. The expected verdicts are computed here from the same script and the rows' own
//! texts (read back with `halubench export`), never by calling halubench's RAGAS code.
//!
//! The script, with `a` the FNV-1a digest of the answer and `p` that of the passage (as the
//! prompts carry them, under their `ANSWER:` and `PASSAGE:` headings):
//! - statement call: `a.is_multiple_of(13)`: no statements; else `a.is_multiple_of(7)`: a reply without JSON,
//!   and after the repair request valid JSON if `a` is even, single-quoted non-JSON if odd;
//!   else `1 + a % 4` statements (in code fences when `a.is_multiple_of(3)`, with prose around when
//!   `a % 3 == 1`);
//! - verification call: `p.is_multiple_of(11)`: one verdict short, and after the repair request the
//!   right count if `p` is even, prose if odd; else statement `j` (from 0) gets verdict 1
//!   iff `((p >> 8) + j) % 3 != 0`;
//! - every reply reports 20 completion tokens.
//!
//! `paper` mode makes no call for an answer with no sentence ending in "."; the test's own
//! rule for that is below ([`has_period_sentence`]).

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::fake_openai::{Request, digest, read_request, respond_with};
use crate::{halubench, read_json, sample_path, stderr};

const COMPLETION_TOKENS: u64 = 20;

/// The scripted server; `calls` counts chat requests (repairs included).
pub struct RagasServer {
    pub base_url: String,
    calls: Arc<AtomicUsize>,
}

pub fn serve() -> RagasServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            thread::spawn(move || {
                let _ = handle(stream, &counter);
            });
        }
    });
    RagasServer { base_url, calls }
}

fn handle(stream: TcpStream, calls: &AtomicUsize) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(Request {
        line: request_line,
        body,
        ..
    }) = read_request(&mut reader)?
    {
        if request_line.starts_with("GET") {
            respond_with(
                &mut writer,
                "200 OK",
                "application/json",
                &[],
                "{\"data\":[]}",
            )?;
            continue;
        }
        calls.fetch_add(1, Ordering::Relaxed);
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        let prompt = messages
            .first()
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default();
        let content = script(prompt, messages.len() > 1);
        let reply = serde_json::json!({
            "model": "ragas-test-served",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": COMPLETION_TOKENS}
        });
        respond_with(
            &mut writer,
            "200 OK",
            "application/json",
            &[],
            &reply.to_string(),
        )?;
    }
    Ok(())
}

/// The text between `start` (first occurrence) and `end` (last occurrence).
fn section<'a>(prompt: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = prompt.find(start)? + start.len();
    let to = prompt.rfind(end)?;
    prompt.get(from..to)
}

fn script(prompt: &str, repair: bool) -> String {
    if let Some(answer) = section(prompt, "\n\n--\nANSWER:\n", "\n\n--\nSENTENCES:\n") {
        let a = digest(answer);
        if a.is_multiple_of(13) {
            return "{\"statements\": []}".to_string();
        }
        if a.is_multiple_of(7) && !repair {
            return "The answer claims several things, listed above.".to_string();
        }
        if a.is_multiple_of(7) && a % 2 == 1 {
            return "{'statements': ['still not JSON']}".to_string();
        }
        let statements: Vec<String> = (0..statement_count(a))
            .map(|j| format!("Claim {j} of answer {a}."))
            .collect();
        let json = serde_json::json!({ "statements": statements }).to_string();
        return match a % 3 {
            0 => format!("```json\n{json}\n```"),
            1 => format!("Here are the statements:\n{json}\nI hope this helps {{:"),
            _ => json,
        };
    }
    if let Some(passage) = section(prompt, "\n\n--\nPASSAGE:\n", "\n\n--\nSTATEMENTS:\n") {
        let p = digest(passage);
        let n = prompt
            .rsplit("\n\n--\nSTATEMENTS:\n")
            .next()
            .map_or(0, |s| s.lines().count());
        if p.is_multiple_of(11) && !repair {
            return verdicts_json(p, n.saturating_sub(1));
        }
        if p.is_multiple_of(11) && p % 2 == 1 {
            return "All statements are supported.".to_string();
        }
        return verdicts_json(p, n);
    }
    "unexpected prompt".to_string()
}

fn statement_count(a: u64) -> usize {
    1 + (a % 4) as usize
}

fn supported(p: u64, j: usize) -> bool {
    !((p >> 8) + j as u64).is_multiple_of(3)
}

fn verdicts_json(p: u64, n: usize) -> String {
    let verdicts: Vec<serde_json::Value> = (0..n)
        .map(|j| {
            serde_json::json!({"statement": format!("statement {j}"), "reason": "scripted",
                "verdict": u8::from(supported(p, j))})
        })
        .collect();
    serde_json::json!({ "verdicts": verdicts }).to_string()
}

/// The test's own reading of ragas 0.1.x's period filter: some sentence ends in ".", that
/// is the answer ends in "." or a "." is followed by whitespace. (On these 143 rows it
/// agrees with the harness's splitter; an abbreviation-only "." would not.)
fn has_period_sentence(answer: &str) -> bool {
    let answer = answer.trim();
    answer.ends_with('.')
        || answer
            .char_indices()
            .any(|(i, c)| c == '.' && answer[i + 1..].starts_with(char::is_whitespace))
}

#[derive(Debug, Clone, PartialEq)]
struct Expected {
    verdict: &'static str,
    invalid_reason: Option<&'static str>,
    statements: usize,
    supported: usize,
    calls: usize,
    repairs: usize,
    verified: bool,
}

/// What the script and the method give for one row.
fn expected(answer: &str, passage: &str, paper: bool, threshold: f64) -> Expected {
    let invalid = |reason, statements, calls, repairs, verified| Expected {
        verdict: "INVALID",
        invalid_reason: Some(reason),
        statements,
        supported: 0,
        calls,
        repairs,
        verified,
    };
    let has_sentences = if paper {
        has_period_sentence(answer)
    } else {
        !answer.trim().is_empty()
    };
    if !has_sentences {
        return invalid("no_statements", 0, 0, 0, false);
    }
    let a = digest(answer);
    if a.is_multiple_of(13) {
        return invalid("no_statements", 0, 1, 0, false);
    }
    let statement_repairs = usize::from(a.is_multiple_of(7));
    if a.is_multiple_of(7) && a % 2 == 1 {
        return invalid("malformed_json", 0, 2, 1, false);
    }
    let k = statement_count(a);
    let p = digest(passage);
    let calls = 2 + statement_repairs;
    if p.is_multiple_of(11) && p % 2 == 1 {
        return invalid("malformed_json", k, calls + 1, statement_repairs + 1, true);
    }
    let verify_repairs = usize::from(p.is_multiple_of(11));
    let supported = (0..k).filter(|&j| supported(p, j)).count();
    let score = supported as f64 / k as f64;
    Expected {
        verdict: if score > threshold { "PASS" } else { "FAIL" },
        invalid_reason: None,
        statements: k,
        supported,
        calls: calls + verify_repairs,
        repairs: statement_repairs + verify_repairs,
        verified: true,
    }
}

/// One row: its task, label and texts, as `halubench export` gives them back.
struct Row {
    task: String,
    label: String,
    answer: String,
    passage: String,
}

fn rows_of(dir: &Path, run: &str) -> BTreeMap<String, Row> {
    let out = halubench(dir, &["export", run, "--out", &format!("{run}-texts")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut rows = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join(format!("{run}-texts"))).expect("export dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let doc = &v["doc"];
            let field = |k: &str| doc[k].as_str().expect(k).to_string();
            rows.insert(
                field("id"),
                Row {
                    task: field("source_ds"),
                    label: field("label"),
                    answer: field("answer"),
                    passage: field("passage"),
                },
            );
        }
    }
    rows
}

fn journal(run: &Path) -> BTreeMap<String, serde_json::Value> {
    std::fs::read_to_string(run.join("judgements.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (v["id"].as_str().expect("id").to_string(), v)
        })
        .collect()
}

/// Per task: (correct, INVALID, rows).
type Tally = BTreeMap<String, (usize, usize, usize)>;

fn tally(rows: &BTreeMap<String, Row>, verdicts: &BTreeMap<String, Expected>) -> Tally {
    let mut tally = Tally::new();
    for (id, row) in rows {
        let e = &verdicts[id];
        let t = tally.entry(row.task.clone()).or_default();
        t.0 += usize::from(e.verdict == row.label);
        t.1 += usize::from(e.verdict == "INVALID");
        t.2 += 1;
    }
    tally
}

/// Accuracy under the `paper` rule: correct / every row, INVALID wrong.
fn paper_rule_accuracy(tally: &Tally) -> BTreeMap<String, f64> {
    tally
        .iter()
        .map(|(task, &(correct, _, n))| (task.clone(), correct as f64 / n as f64))
        .collect()
}

/// Accuracy under the `exclude-invalid` rule: INVALID rows (unparsable, `no_statements`)
/// dropped from the denominator, as the RAGAS notebook did; `None` for a task left empty.
fn exclude_invalid_rule_accuracy(tally: &Tally) -> BTreeMap<String, Option<f64>> {
    tally
        .iter()
        .map(|(task, &(correct, invalid, n))| {
            let kept = n - invalid;
            (
                task.clone(),
                (kept > 0).then(|| correct as f64 / kept as f64),
            )
        })
        .collect()
}

fn ragas_run(dir: &Path, server: &RagasServer, out: &str, extra: &[&str]) {
    let run = ragas(dir, server, out, extra);
    assert!(run.status.success(), "{out}: {}", stderr(&run));
}

/// `halubench run --judge ragas` on the sample rows against `server`.
fn ragas(dir: &Path, server: &RagasServer, out: &str, extra: &[&str]) -> std::process::Output {
    let sample = sample_path();
    let mut args = vec![
        "run",
        "--judge",
        "ragas",
        "--model",
        "gpt-3.5-turbo",
        "--base-url",
        &server.base_url,
        "--dataset",
        &sample,
        "--out",
        out,
        "--concurrency",
        "8",
    ];
    args.extend_from_slice(extra);
    halubench(dir, &args)
}

/// Checks a run's journal and summary against the script; returns the expected tally.
/// `cached`: whether every row that made calls came from the response cache; `None` when
/// not checked (a run that fills the cache serves the sample's repeated row from it).
fn check_run(dir: &Path, out: &str, paper: bool, threshold: f64, cached: Option<bool>) -> Tally {
    let run = dir.join(out);
    let rows = rows_of(dir, out);
    assert_eq!(rows.len(), 143);
    let lines = journal(&run);
    assert_eq!(lines.len(), 143);
    let mut expected_rows = BTreeMap::new();
    for (id, row) in &rows {
        let e = expected(&row.answer, &row.passage, paper, threshold);
        let j = &lines[id];
        let trace = &j["ragas"];
        let context = format!("{id} ({}, answer {:?}): {j}", row.task, row.answer);
        assert_eq!(j["verdict"], e.verdict, "{context}");
        assert_eq!(j["invalid_reason"].as_str(), e.invalid_reason, "{context}");
        assert_eq!(trace["statements"], e.statements, "{context}");
        assert_eq!(trace["supported"], e.supported, "{context}");
        assert_eq!(
            trace["rejected_replies"].as_array().map_or(0, Vec::len),
            e.repairs,
            "{context}"
        );
        assert_eq!(
            trace["verification_reply"].is_string(),
            e.verified,
            "{context}"
        );
        assert_eq!(
            trace["statements_reply"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            e.calls > 0,
            "{context}"
        );
        let raw = if e.verified {
            &trace["verification_reply"]
        } else {
            &trace["statements_reply"]
        };
        assert_eq!(&j["raw"], raw, "{context}");
        if e.invalid_reason.is_none() {
            let score = e.supported as f64 / e.statements as f64;
            assert_eq!(trace["score"].as_f64(), Some(score), "{context}");
            assert_eq!(j["p_fail"].as_f64(), Some(1.0 - score), "{context}");
        } else {
            assert!(
                trace["score"].is_null() && j["p_fail"].is_null(),
                "{context}"
            );
        }
        // Usage is summed over every call, repairs included.
        assert_eq!(
            j["usage"]["completion_tokens"].as_u64().unwrap_or(0),
            COMPLETION_TOKENS * e.calls as u64,
            "{context}"
        );
        if let Some(cached) = cached {
            assert_eq!(
                j["cached"].as_bool().unwrap_or(false),
                cached && e.calls > 0,
                "{context}"
            );
        }
        expected_rows.insert(id.clone(), e);
    }
    let tally = tally(&rows, &expected_rows);
    let summary = read_json(&run.join("summary.json"));
    for (task, accuracy) in paper_rule_accuracy(&tally) {
        let got = summary["tasks"][&task]["accuracy"]
            .as_f64()
            .expect("accuracy");
        assert!(
            (got - accuracy).abs() < 1e-12,
            "{out} {task}: {got} vs {accuracy}"
        );
        assert_eq!(summary["tasks"][&task]["n"], tally[&task].2, "{out} {task}");
    }
    tally
}

#[test]
fn ragas_gives_the_scripted_accuracy_per_task_in_both_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve();

    ragas_run(dir.path(), &server, "fixed", &["--cache"]);
    let fixed_calls = server.calls.load(Ordering::Relaxed);
    let fixed = check_run(dir.path(), "fixed", false, 0.5, None);

    ragas_run(dir.path(), &server, "paper", &["--ragas-mode", "paper"]);
    let paper = check_run(dir.path(), "paper", true, 0.5, Some(false));

    // The two modes differ where they should: paper mode's no_statements rows.
    let invalid = |t: &Tally| t.values().map(|v| v.1).sum::<usize>();
    assert!(
        invalid(&paper) > invalid(&fixed) + 20,
        "{paper:?} vs {fixed:?}"
    );
    let rows = rows_of(dir.path(), "paper");
    let paper_journal = journal(&dir.path().join("paper"));
    let no_period = rows
        .iter()
        .filter(|(_, r)| !has_period_sentence(&r.answer))
        .count();
    let no_call = paper_journal
        .values()
        .filter(|j| j["ragas"]["sentences"] == 0)
        .count();
    assert_eq!(no_call, no_period, "paper mode asks nothing for them");
    // A dry run counts both calls (statements, verification) of every other example.
    let calls_before = server.calls.load(Ordering::Relaxed);
    let dry = ragas(
        dir.path(),
        &server,
        "dry",
        &["--ragas-mode", "paper", "--dry-run"],
    );
    assert!(dry.status.success(), "{}", stderr(&dry));
    let text = crate::stdout(&dry);
    let calls = 2 * (rows.len() - no_period);
    assert!(text.contains(&format!("calls: {calls};")), "{text}");
    assert_eq!(server.calls.load(Ordering::Relaxed), calls_before);
    // Every path of the script was taken, in each mode that can take it.
    let reasons = |j: &BTreeMap<String, serde_json::Value>, reason: &str| {
        j.values().filter(|l| l["invalid_reason"] == reason).count()
    };
    let fixed_journal = journal(&dir.path().join("fixed"));
    assert!(reasons(&fixed_journal, "malformed_json") > 0);
    assert!(reasons(&fixed_journal, "no_statements") > 0);
    assert!(
        fixed_journal
            .values()
            .any(|l| l["ragas"]["rejected_replies"].as_array().is_some()
                && l["verdict"] != "INVALID"),
        "a repair that worked"
    );

    // The same rows under `exclude-invalid`: INVALID rows leave the denominator.
    let fixed_exclude_invalid = exclude_invalid_rule_accuracy(&fixed);
    let paper_exclude_invalid = exclude_invalid_rule_accuracy(&paper);
    assert_eq!(fixed_exclude_invalid.len(), 6);
    assert_eq!(paper_exclude_invalid.len(), 6);
    for (run, expected) in [
        ("fixed", &fixed_exclude_invalid),
        ("paper", &paper_exclude_invalid),
    ] {
        let out = halubench(dir.path(), &["score", run, "--rule", "exclude-invalid"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let summary = read_json(&dir.path().join(run).join("summary.json"));
        assert_eq!(summary["rule"], "exclude-invalid");
        for (task, accuracy) in expected {
            let got = summary["tasks"][task]["accuracy"].as_f64();
            match accuracy {
                Some(expected) => assert!(
                    got.is_some_and(|got| (got - expected).abs() < 1e-12),
                    "{run} {task}: {got:?} vs {expected}"
                ),
                // Every row INVALID: the task stays, with no denominator left, and every
                // one of its rows is counted as dropped.
                None => {
                    assert_eq!(summary["tasks"][task]["n"], 0, "{run} {task}");
                    assert!(got.is_none(), "{run} {task}: no accuracy, not {got:?}");
                    let rows = summary["dropped"][task].as_u64().unwrap_or(0);
                    assert!(rows > 0, "{run} {task}: {summary}");
                }
            }
        }
    }
    assert_eq!(
        paper_exclude_invalid.get("DROP"),
        Some(&None),
        "paper mode leaves no DROP row with a verdict on this script"
    );

    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.path().join("paper/run.toml")).expect("toml"))
            .expect("parse");
    assert_eq!(manifest["judge"]["name"].as_str(), Some("ragas"));
    assert_eq!(
        manifest["judge"]["settings"]["mode"].as_str(),
        Some("paper")
    );
    assert_eq!(
        manifest["judge"]["settings"]["threshold"].as_str(),
        Some("0.5")
    );
    assert_eq!(
        manifest["judge"]["prompt_sha256"].as_str().map(str::len),
        Some(64)
    );

    // From the response cache under another threshold: no call, and the verdicts are the
    // cached scores read against the new threshold.
    ragas_run(
        dir.path(),
        &server,
        "fixed-cached",
        &["--cache", "--ragas-threshold", "0.7"],
    );
    assert_eq!(
        server.calls.load(Ordering::Relaxed) - fixed_calls,
        paper_calls(dir.path())
    );
    check_run(dir.path(), "fixed-cached", false, 0.7, Some(true));
}

/// Chat calls the paper-mode run made, from its journal (each call reports 20 tokens).
fn paper_calls(dir: &Path) -> usize {
    journal(&dir.join("paper"))
        .values()
        .map(|j| j["usage"]["completion_tokens"].as_u64().unwrap_or(0) / COMPLETION_TOKENS)
        .sum::<u64>() as usize
}

#[test]
fn ragas_needs_a_model_and_a_threshold_inside_zero_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = halubench(dir.path(), &["run", "--judge", "ragas"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--model"), "{}", stderr(&out));
    for bad in ["0", "1", "1.5", "NaN"] {
        let out = halubench(
            dir.path(),
            &[
                "run",
                "--judge",
                "ragas",
                "--model",
                "m",
                "--ragas-threshold",
                bad,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
    let help = crate::stdout(&halubench(dir.path(), &["run", "--help"]));
    for text in [
        "--ragas-mode",
        "--ragas-threshold",
        "paper",
        "fixed",
        "no_statements",
    ] {
        assert!(help.contains(text), "{text} in {help}");
    }
}
