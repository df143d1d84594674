//! RAGAS faithfulness as a judge, without the HTTP: how the answer is split into sentences,
//! the two prompts (statement generation, then verification of every statement against the
//! passage), how their JSON replies are read, and how the score becomes a verdict.
//!
//! The method is ragas' (0.1.x `faithfulness`, the row of the Lynx paper's Table 3); the
//! prompt text is our own, versioned in `prompts/ragas-*-v1.txt`. Two modes:
//! - [`RagasMode::Paper`] keeps only sentences that end in "." as ragas 0.1.x did, so a short
//!   answer ("Rams", a list, a number) has no statements and no score (ragas' NaN; here
//!   INVALID with reason `no_statements`);
//! - [`RagasMode::Fixed`] (the default) keeps every sentence, so short answers are judged.
//!
//! The backend that makes the calls (and the repair request after a malformed reply) is
//! `halubench-openai`'s `RagasJudge`; this module only decides what is asked and what a reply
//! means. The sentence splitter is ours too: a plain rule-based one close to pysbd's English
//! rules for the text HaluBench holds (abbreviations, initials and decimals do not end a
//! sentence; a line break does), not a port of it.

use std::fmt::Write as _;

use halubench_core::{Example, RagasTrace, Verdict};
use serde_json::Value;

use crate::prompt::hex_sha256;

/// PASS when the score is above this (ragas' 0.5, as the RAGAS notebook used it).
pub const DEFAULT_THRESHOLD: f64 = 0.5;

/// Which sentences of the answer count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RagasMode {
    /// ragas 0.1.x: only sentences ending in "." (what the paper's numbers were made with).
    Paper,
    /// Every sentence, whatever it ends with.
    #[default]
    Fixed,
}

impl RagasMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RagasMode::Paper => "paper",
            RagasMode::Fixed => "fixed",
        }
    }
}

/// Why a RAGAS judgement has no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RagasInvalid {
    /// No statement to check: no sentence survived the mode's filter, or the model made no
    /// statement of the sentences. ragas scored these NaN.
    NoStatements,
    /// A reply that was not JSON of the asked shape, before and after its repair request.
    MalformedJson,
}

impl RagasInvalid {
    /// The `invalid_reason` journaled.
    pub fn as_str(self) -> &'static str {
        match self {
            RagasInvalid::NoStatements => "no_statements",
            RagasInvalid::MalformedJson => "malformed_json",
        }
    }
}

/// The answer's sentences that count in `mode`, trimmed, in order.
pub fn split_sentences(answer: &str, mode: RagasMode) -> Vec<String> {
    let sentences = answer.lines().flat_map(split_line);
    match mode {
        // ragas 0.1.x: `sentence.strip().endswith(".")`.
        RagasMode::Paper => sentences.filter(|s| s.ends_with('.')).collect(),
        RagasMode::Fixed => sentences.collect(),
    }
}

/// Words after which a "." is an abbreviation, not a sentence end (compared lower-case).
/// "No." is not among them: HaluBench's PubMedQA answers open with "No. ...".
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "inc", "ltd", "co", "corp",
    "fig", "approx", "dept", "jan", "feb", "aug", "sept", "oct", "nov", "dec",
];

/// One line's sentences: a sentence ends at ".", "!" or "?" (with any closing quotes or
/// brackets after it) followed by whitespace, or at the end of the line.
fn split_line(line: &str) -> Vec<String> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if matches!(c, '.' | '!' | '?') {
            let mut end = i + 1;
            while end < chars.len() && matches!(chars[end].1, '"' | '\'' | ')' | ']' | '”' | '’')
            {
                end += 1;
            }
            let followed_by_space = end < chars.len() && chars[end].1.is_whitespace();
            if followed_by_space && !(c == '.' && is_abbreviation(&line[start..at], start == 0)) {
                let cut = chars[end].0;
                push_trimmed(&mut sentences, &line[start..cut]);
                start = cut;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    push_trimmed(&mut sentences, &line[start..]);
    sentences
}

fn push_trimmed(sentences: &mut Vec<String>, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        sentences.push(text.to_string());
    }
}

/// Whether the "." after `before` belongs to an abbreviation: a known one, a single letter
/// (an initial), a word with dots inside ("e.g", "U.S"), or the number of a list item at the
/// start of a line ("1. Open the app").
fn is_abbreviation(before: &str, line_start: bool) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or_default();
    let lower = word.to_lowercase();
    let is_list_number = line_start
        && before.trim_start() == word
        && !word.is_empty()
        && word.chars().all(|c| c.is_ascii_digit());
    ABBREVIATIONS.contains(&lower.as_str())
        || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
        || word.contains('.')
        || is_list_number
}

/// One of the RAGAS prompt templates: its text, name and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RagasTemplate {
    name: &'static str,
    text: &'static str,
    sha256: String,
}

impl RagasTemplate {
    fn new(name: &'static str, text: &'static str) -> RagasTemplate {
        RagasTemplate {
            name,
            text,
            sha256: hex_sha256(text),
        }
    }

    pub fn name(&self) -> &str {
        self.name
    }

    pub fn text(&self) -> &str {
        self.text
    }

    /// Lower-case hex SHA-256 of the text.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Fills `{name}` placeholders in one pass: text put in is never scanned again, so an
    /// answer holding "{context}" stays as it is. Other braces are literal (the JSON shapes).
    fn fill(&self, values: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(
            self.text.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>(),
        );
        let mut rest = self.text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            rest = &rest[open..];
            let filled = values.iter().find(|(name, _)| {
                rest[1..].starts_with(name) && rest[1 + name.len()..].starts_with('}')
            });
            match filled {
                Some((name, value)) => {
                    out.push_str(value);
                    rest = &rest[name.len() + 2..];
                }
                None => {
                    out.push('{');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The reply shapes, as the prompts and the repair request show them.
const STATEMENTS_SHAPE: &str = r#"{"statements": ["<first statement>", "<second statement>"]}"#;
const VERDICTS_SHAPE: &str =
    r#"{"verdicts": [{"statement": "<the statement>", "reason": "<why>", "verdict": 1}]}"#;

/// The three templates of one version of the method: statement generation, verification and
/// the repair request sent after a malformed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RagasPrompts {
    pub statements: RagasTemplate,
    pub verify: RagasTemplate,
    pub repair: RagasTemplate,
}

impl Default for RagasPrompts {
    fn default() -> Self {
        RagasPrompts::v1()
    }
}

impl RagasPrompts {
    /// The shipped prompts, `prompts/ragas-{statements,verify,repair}-v1.txt`.
    pub fn v1() -> RagasPrompts {
        RagasPrompts {
            statements: RagasTemplate::new(
                "ragas-statements-v1",
                include_str!("../prompts/ragas-statements-v1.txt"),
            ),
            verify: RagasTemplate::new(
                "ragas-verify-v1",
                include_str!("../prompts/ragas-verify-v1.txt"),
            ),
            repair: RagasTemplate::new(
                "ragas-repair-v1",
                include_str!("../prompts/ragas-repair-v1.txt"),
            ),
        }
    }

    /// One digest of all three templates, for `run.toml`'s `prompt_sha256`: the SHA-256 of
    /// their three digests, one a line, in the order statements, verify, repair.
    pub fn sha256(&self) -> String {
        hex_sha256(&format!(
            "{}\n{}\n{}\n",
            self.statements.sha256, self.verify.sha256, self.repair.sha256
        ))
    }

    /// The statement-generation prompt: the question, the whole answer, and the sentences
    /// that count, numbered from 1.
    pub fn render_statements(&self, example: &Example, sentences: &[String]) -> String {
        self.statements.fill(&[
            ("question", &example.question),
            ("answer", &example.answer),
            ("sentences", &numbered(sentences)),
        ])
    }

    /// The verification prompt: the passage and the statements, numbered from 1.
    pub fn render_verification(&self, example: &Example, statements: &[String]) -> String {
        self.verify.fill(&[
            ("context", &example.passage),
            ("statements", &numbered(statements)),
        ])
    }

    /// The repair request after a reply to `step` that could not be read, and why.
    pub fn render_repair(&self, step: RagasStep, problem: &str) -> String {
        let shape = match step {
            RagasStep::Statements => STATEMENTS_SHAPE,
            RagasStep::Verification => VERDICTS_SHAPE,
        };
        self.repair.fill(&[("problem", problem), ("shape", shape)])
    }
}

/// Which of the two calls a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RagasStep {
    Statements,
    Verification,
}

fn numbered(items: &[String]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        // Writing to a String cannot fail. A line break inside an item would read as
        // another item, so it becomes a space.
        let _ = writeln!(out, "{}. {}", i + 1, item.replace(['\r', '\n'], " "));
    }
    out.truncate(out.trim_end().len());
    out
}

/// What is wrong with a reply, in words fit to send back in the repair request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How many `{` a reply may open before we give up looking for its JSON object: a reply
/// is a few kilobytes, and each try parses from that point on.
const MAX_OBJECT_STARTS: usize = 64;

/// The first JSON object in `reply`: the whole reply, or one inside code fences or prose.
/// Strict about the JSON itself: single quotes, trailing commas or comments do not parse.
fn first_object(reply: &str) -> Result<serde_json::Map<String, Value>, Malformed> {
    for (start, _) in reply.match_indices('{').take(MAX_OBJECT_STARTS) {
        let mut values = serde_json::Deserializer::from_str(&reply[start..]).into_iter::<Value>();
        if let Some(Ok(Value::Object(object))) = values.next() {
            return Ok(object);
        }
    }
    Err(Malformed("it holds no valid JSON object".to_string()))
}

/// The statements of a statement-generation reply: `{"statements": [string, ...]}`. Blank
/// statements are dropped; anything else that is not a string makes the reply malformed.
pub fn parse_statements(reply: &str) -> Result<Vec<String>, Malformed> {
    let object = first_object(reply)?;
    let Some(Value::Array(items)) = object.get("statements") else {
        return Err(Malformed(
            "the object has no \"statements\" array".to_string(),
        ));
    };
    let mut statements = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(Malformed(format!("statement {} is not a string", i + 1)));
        };
        if !text.trim().is_empty() {
            statements.push(text.trim().to_string());
        }
    }
    Ok(statements)
}

/// How many of `expected` statements a verification reply supports: `{"verdicts": [{...,
/// "verdict": 1 or 0}, ...]}` with exactly one entry per statement. A verdict may be the
/// number or the string "1" or "0"; anything else, or another count, is malformed (ragas
/// divided by the count it got back, which hides a dropped statement).
pub fn parse_verdicts(reply: &str, expected: usize) -> Result<usize, Malformed> {
    let object = first_object(reply)?;
    let Some(Value::Array(items)) = object.get("verdicts") else {
        return Err(Malformed(
            "the object has no \"verdicts\" array".to_string(),
        ));
    };
    if items.len() != expected {
        return Err(Malformed(format!(
            "it has {} verdicts for {expected} statements",
            items.len()
        )));
    }
    let mut supported = 0;
    for (i, item) in items.iter().enumerate() {
        let verdict = item.get("verdict");
        let value = match verdict {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match value {
            Some(1.0) => supported += 1,
            Some(0.0) => {}
            _ => {
                return Err(Malformed(format!("verdict {} is not 1 or 0", i + 1)));
            }
        }
    }
    Ok(supported)
}

/// `supported / statements`, or `None` when there are no statements (ragas' NaN).
pub fn score(supported: usize, statements: usize) -> Option<f64> {
    (statements > 0).then(|| supported as f64 / statements as f64)
}

/// What a RAGAS trace says: its verdict under `threshold`, why it has none, and the
/// judge's probability of a hallucination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RagasOutcome {
    pub verdict: Verdict,
    pub invalid: Option<RagasInvalid>,
    /// `1 − score`: the share of statements the passage does not support.
    pub p_fail: Option<f64>,
}

/// The verdict of a finished trace: PASS iff the score is above `threshold`. Pure, so that a
/// trace from the response cache is judged under the current threshold.
pub fn outcome(trace: &RagasTrace, threshold: f64) -> RagasOutcome {
    match trace.score {
        Some(score) => RagasOutcome {
            verdict: if score > threshold {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            invalid: None,
            p_fail: Some((1.0 - score).clamp(0.0, 1.0)),
        },
        None => {
            // No score: either nothing to check (no sentence sent, or a readable reply with
            // no statement), or a reply that stayed malformed.
            let nothing_to_check = trace.statements == 0
                && (trace.sentences == 0
                    || parse_statements(&trace.statements_reply).is_ok_and(|s| s.is_empty()));
            RagasOutcome {
                verdict: Verdict::Invalid,
                invalid: Some(if nothing_to_check {
                    RagasInvalid::NoStatements
                } else {
                    RagasInvalid::MalformedJson
                }),
                p_fail: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use halubench_core::Label;

    use super::*;

    fn fixed(answer: &str) -> Vec<String> {
        split_sentences(answer, RagasMode::Fixed)
    }

    fn paper(answer: &str) -> Vec<String> {
        split_sentences(answer, RagasMode::Paper)
    }

    #[test]
    fn fixed_mode_keeps_every_sentence_and_paper_mode_only_those_ending_in_a_period() {
        let answer = "The Rams won. Did they? Yes! Marc Bulger threw twice";
        assert_eq!(
            fixed(answer),
            [
                "The Rams won.",
                "Did they?",
                "Yes!",
                "Marc Bulger threw twice"
            ]
        );
        assert_eq!(paper(answer), ["The Rams won."]);
        for short in [
            "Rams",
            "['Rams', 'second']",
            "37735",
            "$4064.00",
            "26.5%",
            "yes",
        ] {
            assert_eq!(fixed(short), [short], "{short}");
            assert!(paper(short).is_empty(), "{short}");
        }
        assert!(fixed("").is_empty() && fixed("  \n ").is_empty());
        // A sentence that closes a quote ends in a quote, not a period: ragas dropped it.
        assert_eq!(
            fixed("He said \"go.\" Then left."),
            ["He said \"go.\"", "Then left."]
        );
        assert_eq!(paper("He said \"go.\" Then left."), ["Then left."]);
    }

    #[test]
    fn abbreviations_initials_decimals_and_list_numbers_do_not_end_a_sentence() {
        assert_eq!(
            fixed("Carol A. Beier was a justice. Dr. Smith agreed, e.g. on 3.5 points."),
            [
                "Carol A. Beier was a justice.",
                "Dr. Smith agreed, e.g. on 3.5 points."
            ]
        );
        assert_eq!(paper("Harley-Davidson, Inc."), ["Harley-Davidson, Inc."]);
        assert_eq!(
            fixed("Follow these steps: \n\n1. Open the Settings app. Click Apps.\n2. Pick one"),
            [
                "Follow these steps:",
                "1. Open the Settings app.",
                "Click Apps.",
                "2. Pick one"
            ]
        );
        // A number ending a sentence inside a line still ends it.
        assert_eq!(fixed("He scored 3. Then 4."), ["He scored 3.", "Then 4."]);
    }

    #[test]
    fn statements_are_read_from_fences_and_prose_but_the_shape_is_strict() {
        let ok = "Sure! Here you go:\n```json\n{\"statements\": [\"A is B.\", \" \", \"C.\"]}\n```\nDone {x}.";
        assert_eq!(
            parse_statements(ok),
            Ok(vec!["A is B.".to_string(), "C.".to_string()])
        );
        assert_eq!(parse_statements("{\"statements\": []}"), Ok(Vec::new()));
        for bad in [
            "no json here",
            "{'statements': ['single quotes']}",
            "{\"statements\": \"one string\"}",
            "{\"claims\": [\"A.\"]}",
            "{\"statements\": [\"A.\", 3]}",
            "[\"A.\", \"B.\"]",
            "{\"statements\": [\"A.\",]}",
            "{\"statements\": [\"cut off",
        ] {
            assert!(parse_statements(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn verdicts_must_be_one_per_statement_and_one_or_zero() {
        let reply = |verdicts: &str| format!("```\n{{\"verdicts\": [{verdicts}]}}\n```");
        let v = |n: &str| format!("{{\"statement\": \"s\", \"reason\": \"r\", \"verdict\": {n}}}");
        let two = reply(&format!("{},{}", v("1"), v("0")));
        assert_eq!(parse_verdicts(&two, 2), Ok(1));
        assert_eq!(
            parse_verdicts(&reply(&format!("{},{}", v("\"1\""), v("1.0"))), 2),
            Ok(2)
        );
        assert!(parse_verdicts(&two, 3).is_err(), "a statement dropped");
        assert!(parse_verdicts(&two, 1).is_err(), "a statement too many");
        for bad in ["2", "true", "\"yes\"", "null", "-1"] {
            assert!(parse_verdicts(&reply(&v(bad)), 1).is_err(), "{bad}");
        }
        assert!(parse_verdicts(&reply("{\"statement\": \"s\"}"), 1).is_err());
        assert!(parse_verdicts("{\"statements\": []}", 0).is_err());
    }

    fn trace(
        sentences: usize,
        statements_reply: &str,
        statements: usize,
        supported: usize,
    ) -> RagasTrace {
        RagasTrace {
            sentences,
            statements_reply: statements_reply.to_string(),
            verification_reply: None,
            rejected_replies: Vec::new(),
            statements,
            supported,
            score: score(supported, statements),
        }
    }

    #[test]
    fn pass_only_above_the_threshold_and_no_score_is_invalid_with_its_reason() {
        let at = |supported, statements, threshold| {
            outcome(&trace(1, "{}", statements, supported), threshold)
        };
        assert_eq!(at(2, 3, 0.5).verdict, Verdict::Pass);
        assert_eq!(at(1, 2, 0.5).verdict, Verdict::Fail, "0.5 is not above 0.5");
        assert_eq!(at(1, 2, 0.49).verdict, Verdict::Pass);
        assert_eq!(at(0, 4, 0.5).verdict, Verdict::Fail);
        assert_eq!(at(4, 4, 0.99).verdict, Verdict::Pass);
        assert_eq!(at(1, 4, 0.5).p_fail, Some(0.75));
        assert_eq!(score(0, 0), None);
        assert_eq!(score(3, 3), Some(1.0));

        let none = outcome(&trace(0, "", 0, 0), 0.5);
        assert_eq!(
            (none.verdict, none.invalid, none.p_fail),
            (Verdict::Invalid, Some(RagasInvalid::NoStatements), None)
        );
        let empty = outcome(&trace(2, "{\"statements\": []}", 0, 0), 0.5);
        assert_eq!(empty.invalid, Some(RagasInvalid::NoStatements));
        let garbled = outcome(&trace(2, "not json", 0, 0), 0.5);
        assert_eq!(garbled.invalid, Some(RagasInvalid::MalformedJson));
        let mut unverified = trace(2, "{\"statements\": [\"a\"]}", 1, 0);
        unverified.score = None;
        assert_eq!(
            outcome(&unverified, 0.5).invalid,
            Some(RagasInvalid::MalformedJson)
        );
    }

    #[test]
    fn prompts_fill_their_placeholders_once_and_keep_literal_braces() {
        let prompts = RagasPrompts::v1();
        let example = Example {
            id: "1".to_string(),
            task: "DROP".to_string(),
            passage: "The {answer} passage.".to_string(),
            question: "Who won?".to_string(),
            answer: "Rams {sentences}".to_string(),
            label: Label::Pass,
        };
        let text = prompts.render_statements(&example, &["Rams {sentences}".to_string()]);
        assert!(text.contains("QUESTION:\nWho won?\n"), "{text}");
        assert!(text.contains("ANSWER:\nRams {sentences}\n"), "{text}");
        assert!(
            text.ends_with("SENTENCES:\n1. Rams {sentences}\n"),
            "{text}"
        );
        assert!(text.contains(STATEMENTS_SHAPE), "{text}");
        let text = prompts.render_verification(&example, &["A.".to_string(), "B\nC.".to_string()]);
        assert!(text.contains("PASSAGE:\nThe {answer} passage.\n"), "{text}");
        assert!(text.ends_with("STATEMENTS:\n1. A.\n2. B C.\n"), "{text}");
        assert!(text.contains(VERDICTS_SHAPE), "{text}");
        let text = prompts.render_repair(
            RagasStep::Verification,
            "it has 1 verdicts for 2 statements",
        );
        assert!(
            text.starts_with("Your reply could not be read: it has 1 verdicts"),
            "{text}"
        );
        assert!(text.contains(VERDICTS_SHAPE), "{text}");
        for template in [&prompts.statements, &prompts.verify, &prompts.repair] {
            assert!(!template.fill(&[]).is_empty());
            assert_eq!(template.sha256().len(), 64);
        }
        assert_ne!(prompts.statements.sha256(), prompts.verify.sha256());
        assert_eq!(prompts.sha256(), RagasPrompts::v1().sha256());
    }
}
