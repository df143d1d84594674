//! Accuracy rules: which rows count and how a reply is read, as named choices recorded with
//! every score. The paper states one protocol and Patronus' own scripts follow others, so a
//! number only means something next to its rule:
//!
//! - [`AccuracyRule::Paper`]: every selected row; an INVALID verdict counts as wrong.
//! - [`AccuracyRule::ExcludeInvalid`]: rows without a verdict (unparsable replies, failed
//!   calls, RAGAS answers with no statements) leave the denominator, as the RAGAS notebook
//!   dropped its NaN scores.
//! - [`AccuracyRule::LynxScript`]: as the official Lynx inference script, rows whose prompt is
//!   [`LYNX_SCRIPT_MAX_PROMPT_TOKENS`] Llama-3 tokens or more are never judged, and a verdict
//!   is read only from a quoted `"SCORE": "..."`.
//!
//! Rules apply at scoring time to journals, so one run can be read under each. This module
//! does not count tokens: the caller brings the prompt lengths ([`PromptLengths`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use halubench_core::{Judgement, Verdict, task_heading, task_order};
use serde::{Deserialize, Serialize};

use crate::ScoreError;

/// The official script's `--max_token_count_message`: prompts of this many Llama-3 tokens or
/// more are dropped before inference.
pub const LYNX_SCRIPT_MAX_PROMPT_TOKENS: usize = 4000;

/// The invalid reason of a reply with no quoted `"SCORE": "..."` under the lynx-script rule.
pub const NO_QUOTED_SCORE: &str = "no_quoted_score";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccuracyRule {
    #[default]
    Paper,
    ExcludeInvalid,
    LynxScript,
}

impl AccuracyRule {
    pub const ALL: [AccuracyRule; 3] = [
        AccuracyRule::Paper,
        AccuracyRule::ExcludeInvalid,
        AccuracyRule::LynxScript,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccuracyRule::Paper => "paper",
            AccuracyRule::ExcludeInvalid => "exclude-invalid",
            AccuracyRule::LynxScript => "lynx-script",
        }
    }

    /// One sentence saying what the rule counts, for the tables that state it.
    pub fn description(self) -> &'static str {
        match self {
            AccuracyRule::Paper => {
                "every selected row counts; an INVALID verdict is wrong (the paper's protocol)"
            }
            AccuracyRule::ExcludeInvalid => {
                "rows without a verdict (INVALID, failed calls, no_statements) are left out of \
                 the denominator (the RAGAS notebook's rule)"
            }
            AccuracyRule::LynxScript => {
                "rows whose Lynx prompt is 4,000 Llama-3 tokens or more are left out, and a \
                 verdict is read only from a quoted \"SCORE\": \"...\" (the official Lynx \
                 script's rule)"
            }
        }
    }

    /// Whether the rule needs [`PromptLengths`].
    pub fn needs_prompt_lengths(self) -> bool {
        self == AccuracyRule::LynxScript
    }
}

impl fmt::Display for AccuracyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AccuracyRule {
    type Err = String;

    fn from_str(s: &str) -> Result<AccuracyRule, String> {
        AccuracyRule::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = AccuracyRule::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown rule `{s}` (rules: {})", names.join(", "))
            })
    }
}

/// The rule and each task's denominator as one sentence, for the tables that must state
/// both: `Rule: paper: every selected row counts; ... Rows per task: HaluEval 26, DROP 13.`;
/// with the rows the rule dropped, when it dropped any.
pub fn statement(
    rule: AccuracyRule,
    rows: &BTreeMap<String, usize>,
    dropped: &BTreeMap<String, usize>,
) -> String {
    let per_task = |counts: &BTreeMap<String, usize>| {
        let mut tasks: Vec<(&String, &usize)> = counts.iter().collect();
        tasks.sort_by_key(|(task, _)| task_order(task));
        tasks
            .iter()
            .map(|(task, n)| format!("{} {n}", task_heading(task)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "Rule: {rule}: {}. Rows per task: {}.",
        rule.description(),
        per_task(rows)
    );
    if !dropped.is_empty() {
        text.push_str(&format!(" Dropped by the rule: {}.", per_task(dropped)));
    }
    text
}

/// Each example's prompt length in Llama-3 tokens, by id.
pub type PromptLengths = HashMap<String, usize>;

/// Runs read under a rule: what each keeps, and what was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruled {
    pub rule: AccuracyRule,
    /// Per run, the judgements that count, verdicts as the rule reads them.
    pub runs: Vec<Vec<Judgement>>,
    /// Rows each task loses from every run's denominator.
    pub dropped: BTreeMap<String, usize>,
}

/// Reads the runs (each one judge's latest judgement per example, over the same examples)
/// under `rule`. A row is dropped from every run together, so that runs scored side by side
/// stay paired: under `exclude-invalid`, a row any run has no verdict for is dropped from
/// all of them (one run alone drops its own INVALID rows). `lengths` is needed for
/// `lynx-script` only, and must cover every example.
pub fn apply(
    rule: AccuracyRule,
    runs: &[&[Judgement]],
    lengths: Option<&PromptLengths>,
) -> Result<Ruled, ScoreError> {
    let drop: BTreeSet<&str> = match rule {
        AccuracyRule::Paper => BTreeSet::new(),
        AccuracyRule::ExcludeInvalid => runs
            .iter()
            .flat_map(|run| run.iter())
            .filter(|j| j.verdict == Verdict::Invalid)
            .map(|j| j.id.as_str())
            .collect(),
        AccuracyRule::LynxScript => {
            let lengths = lengths.ok_or(ScoreError::RuleInput {
                rule,
                missing: "the prompts' Llama-3 token counts".to_string(),
            })?;
            let mut drop = BTreeSet::new();
            for judgement in runs.iter().flat_map(|run| run.iter()) {
                let length = lengths
                    .get(&judgement.id)
                    .ok_or_else(|| ScoreError::RuleInput {
                        rule,
                        missing: format!("the prompt length of example `{}`", judgement.id),
                    })?;
                if *length >= LYNX_SCRIPT_MAX_PROMPT_TOKENS {
                    drop.insert(judgement.id.as_str());
                }
            }
            drop
        }
    };
    let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
    if let Some(first) = runs.first() {
        for judgement in first.iter().filter(|j| drop.contains(j.id.as_str())) {
            *dropped.entry(judgement.task.clone()).or_default() += 1;
        }
    }
    let runs = runs
        .iter()
        .map(|run| {
            run.iter()
                .filter(|j| !drop.contains(j.id.as_str()))
                .map(|j| match rule {
                    AccuracyRule::LynxScript => read_quoted_score(j),
                    _ => j.clone(),
                })
                .collect()
        })
        .collect();
    Ok(Ruled {
        rule,
        runs,
        dropped,
    })
}

/// The judgement with its verdict read as the official script reads it; a call that got no
/// reply stays as it is (the script's `ERROR`, wrong whatever the label).
fn read_quoted_score(judgement: &Judgement) -> Judgement {
    let mut read = judgement.clone();
    if judgement.error.is_some() || judgement.raw.is_empty() {
        return read;
    }
    match quoted_score(&judgement.raw) {
        Some("PASS") => {
            read.verdict = Verdict::Pass;
            read.invalid_reason = None;
        }
        Some("FAIL") => {
            read.verdict = Verdict::Fail;
            read.invalid_reason = None;
        }
        _ => {
            read.verdict = Verdict::Invalid;
            read.invalid_reason = Some(NO_QUOTED_SCORE.to_string());
            // A probability read off a verdict the rule does not see would score a row the
            // rule calls unanswered.
            read.p_fail = None;
        }
    }
    read
}

/// The word of the first `"SCORE"` followed by optional whitespace, a colon, optional
/// whitespace and a double-quoted run of word characters and a closing quote: the script's
/// regex `"SCORE":\s*"(\w+)"`, searched (not anchored), case-sensitive. No match is `None`.
/// `\w` is taken as Rust's alphanumeric or `_`, which differs from Python's only on rare
/// combining marks (Python excludes e.g. U+093E), never on ASCII.
pub fn quoted_score(reply: &str) -> Option<&str> {
    // Python's `\s` before the colon is not in the pattern: the colon follows the key at once.
    let mut rest = reply;
    while let Some(at) = rest.find("\"SCORE\":") {
        let after = &rest[at + "\"SCORE\":".len()..];
        let value = after.trim_start_matches(is_python_space);
        if let Some(quoted) = value.strip_prefix('"') {
            let end = quoted
                .char_indices()
                .find(|(_, c)| !is_word(*c))
                .map_or(quoted.len(), |(i, _)| i);
            if end > 0 && quoted[end..].starts_with('"') {
                return Some(&quoted[..end]);
            }
        }
        rest = &rest[at + 1..];
    }
    None
}

/// Python 3's `\w` on `str` patterns: Unicode letters, digits and the underscore.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Python 3's `\s` on `str` patterns: Unicode whitespace (plus the separators \x1c–\x1f,
/// which Rust does not count as whitespace).
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::Label;

    fn judged(id: &str, verdict: Verdict, raw: &str) -> Judgement {
        Judgement {
            raw: raw.to_string(),
            ..Judgement::new(id, "t", Label::Fail, verdict)
        }
    }

    #[test]
    fn quoted_score_follows_the_scripts_regex() {
        for (reply, expected) in [
            (r#"{"REASONING": ["x"], "SCORE": "FAIL"}"#, Some("FAIL")),
            ("{\"SCORE\":\n\t \"PASS\"}", Some("PASS")),
            (r#"{"SCORE": FAIL}"#, None),
            (r#"{'SCORE': 'PASS'}"#, None),
            (r#"{"SCORE" : "PASS"}"#, None),
            (r#"{"SCORE": "PASS, mostly"}"#, None),
            (r#"{"SCORE": "", "SCORE": "FAIL"}"#, Some("FAIL")),
            (r#""SCORE": "pass""#, Some("pass")),
            ("no score at all", None),
        ] {
            assert_eq!(quoted_score(reply), expected, "{reply}");
        }
    }

    #[test]
    fn exclude_invalid_drops_a_row_from_every_run() {
        let a = vec![
            judged("1", Verdict::Pass, ""),
            judged("2", Verdict::Invalid, ""),
            judged("3", Verdict::Fail, ""),
        ];
        let b = vec![
            judged("1", Verdict::Invalid, ""),
            judged("2", Verdict::Fail, ""),
            judged("3", Verdict::Fail, ""),
        ];
        let ruled = apply(AccuracyRule::ExcludeInvalid, &[&a, &b], None).expect("applies");
        for run in &ruled.runs {
            let ids: Vec<&str> = run.iter().map(|j| j.id.as_str()).collect();
            assert_eq!(ids, ["3"]);
        }
        assert_eq!(ruled.dropped["t"], 2);
        let alone = apply(AccuracyRule::ExcludeInvalid, &[&a], None).expect("applies");
        assert_eq!(alone.runs[0].len(), 2);
    }

    #[test]
    fn lynx_script_drops_long_prompts_and_rereads_verdicts() {
        let run = vec![
            judged("short", Verdict::Fail, r#"{"SCORE": FAIL}"#),
            judged("long", Verdict::Pass, r#"{"SCORE": "PASS"}"#),
            judged("edge", Verdict::Pass, r#"{"SCORE": "PASS"}"#),
            judged("quoted", Verdict::Invalid, r#"{"SCORE": "FAIL"} and more"#),
        ];
        let lengths: PromptLengths = [("short", 10), ("long", 4000), ("edge", 3999), ("quoted", 1)]
            .into_iter()
            .map(|(id, n)| (id.to_string(), n))
            .collect();
        let ruled = apply(AccuracyRule::LynxScript, &[&run], Some(&lengths)).expect("applies");
        let read: Vec<(&str, Verdict)> = ruled.runs[0]
            .iter()
            .map(|j| (j.id.as_str(), j.verdict))
            .collect();
        assert_eq!(
            read,
            [
                ("short", Verdict::Invalid),
                ("edge", Verdict::Pass),
                ("quoted", Verdict::Fail)
            ]
        );
        assert_eq!(
            ruled.runs[0][0].invalid_reason.as_deref(),
            Some(NO_QUOTED_SCORE)
        );
        assert_eq!(ruled.dropped["t"], 1);

        assert!(matches!(
            apply(AccuracyRule::LynxScript, &[&run], None),
            Err(ScoreError::RuleInput { .. })
        ));
        let partial: PromptLengths = [("short".to_string(), 1)].into_iter().collect();
        assert!(apply(AccuracyRule::LynxScript, &[&run], Some(&partial)).is_err());
    }

    #[test]
    fn names_round_trip() {
        for rule in AccuracyRule::ALL {
            assert_eq!(rule.as_str().parse::<AccuracyRule>(), Ok(rule));
            let json = serde_json::to_string(&rule).unwrap_or_default();
            assert_eq!(json, format!("\"{rule}\""));
        }
        assert!("strict".parse::<AccuracyRule>().is_err());
    }
}
