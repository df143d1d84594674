//! Integration tests of halubench-judge: the verdict parser against a corpus of judge
//! replies written in the styles real judges use (`replies.jsonl`, one case a line).

use std::collections::BTreeMap;

use halubench_core::Verdict;
use halubench_judge::{InvalidReason, parse_verdict};
use serde_json::Value;

const CORPUS: &str = include_str!("replies.jsonl");
const MIN_CASES: usize = 35;

/// One line of the corpus.
#[derive(Debug)]
struct Case {
    line: usize,
    reply: String,
    verdict: Verdict,
    /// `InvalidReason::as_str()`, or `None` for a valid verdict.
    reason: Option<String>,
    /// For `unknown_score`: the value the parser must report, when the case gives one.
    value: Option<String>,
    note: String,
}

fn field<'a>(case: &'a Value, line: usize, key: &str) -> &'a Value {
    case.get(key)
        .unwrap_or_else(|| panic!("replies.jsonl:{line}: no {key:?}"))
}

fn text(case: &Value, line: usize, key: &str) -> String {
    field(case, line, key)
        .as_str()
        .unwrap_or_else(|| panic!("replies.jsonl:{line}: {key:?} is not a string"))
        .to_string()
}

fn corpus() -> Vec<Case> {
    CORPUS
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, raw)| {
            let line = index + 1;
            let case: Value = serde_json::from_str(raw)
                .unwrap_or_else(|err| panic!("replies.jsonl:{line}: not JSON: {err}"));
            let verdict = match text(&case, line, "verdict").as_str() {
                "PASS" => Verdict::Pass,
                "FAIL" => Verdict::Fail,
                "INVALID" => Verdict::Invalid,
                other => panic!("replies.jsonl:{line}: unknown verdict {other:?}"),
            };
            let reason = match field(&case, line, "reason") {
                Value::Null => None,
                _ => Some(text(&case, line, "reason")),
            };
            let value = case
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_string);
            Case {
                line,
                reply: text(&case, line, "reply"),
                verdict,
                reason,
                value,
                note: text(&case, line, "note"),
            }
        })
        .collect()
}

#[test]
fn every_corpus_reply_parses_as_expected() {
    let mut failures = Vec::new();
    for case in corpus() {
        let parsed = parse_verdict(&case.reply);
        let reason = parsed.invalid.as_ref().map(InvalidReason::as_str);
        let value = match &parsed.invalid {
            Some(InvalidReason::UnknownScore(value)) => Some(value.as_str()),
            _ => None,
        };
        let value_ok = case.value.is_none() || case.value.as_deref() == value;
        if parsed.verdict != case.verdict || reason != case.reason.as_deref() || !value_ok {
            failures.push(format!(
                "line {} ({}): expected {} {:?} {:?}, got {:?}",
                case.line, case.note, case.verdict, case.reason, case.value, parsed
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_is_large_and_covers_every_outcome() {
    let cases = corpus();
    assert!(
        cases.len() >= MIN_CASES,
        "{} cases, want {MIN_CASES}",
        cases.len()
    );
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        // A valid verdict has no reason, and an invalid one always has.
        assert_eq!(
            case.verdict == Verdict::Invalid,
            case.reason.is_some(),
            "line {}",
            case.line
        );
        let outcome = case
            .reason
            .clone()
            .unwrap_or_else(|| case.verdict.to_string());
        *outcomes.entry(outcome).or_default() += 1;
    }
    for outcome in [
        "PASS",
        "FAIL",
        "empty",
        "no_score",
        "truncated",
        "ambiguous",
        "unknown_score",
    ] {
        assert!(
            outcomes.get(outcome).is_some_and(|&n| n >= 2),
            "fewer than two cases of {outcome}: {outcomes:?}"
        );
    }
}

#[test]
fn invalid_verdicts_always_carry_a_reason() {
    for case in corpus() {
        let parsed = parse_verdict(&case.reply);
        assert_eq!(
            parsed.verdict == Verdict::Invalid,
            parsed.invalid.is_some(),
            "line {}",
            case.line
        );
    }
}
