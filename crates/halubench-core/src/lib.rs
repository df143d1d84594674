//! Plain data shared by every halubench crate: examples, labels, verdicts, judgements and the
//! run manifest, and the table model every report renders.
//!
//! This crate does no IO and knows nothing about files, HTTP or models: it only defines the
//! vocabulary the other crates speak, so that each of them can depend on it without pulling
//! in anything heavy.

mod safe_url;
mod table;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use safe_url::{SafeUrl, UrlError};
pub use table::{Table, markdown_cell};

/// The ground-truth label of an example: is the answer faithful to the passage?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Label {
    /// The answer is faithful to the passage.
    #[serde(rename = "PASS")]
    Pass,
    /// The answer contains a hallucination.
    #[serde(rename = "FAIL")]
    Fail,
}

impl Label {
    /// Parses the exact spellings HaluBench uses; anything else is `None`.
    pub fn parse(text: &str) -> Option<Label> {
        match text {
            "PASS" => Some(Label::Pass),
            "FAIL" => Some(Label::Fail),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Pass => "PASS",
            Label::Fail => "FAIL",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a judge said about an example. `Invalid` is a reply that carries no usable verdict;
/// it is data, not an error, and counts as wrong (the paper's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
    #[serde(rename = "INVALID")]
    Invalid,
}

impl Verdict {
    /// Whether this verdict agrees with the ground truth. `Invalid` never does.
    pub fn is_correct(self, label: Label) -> bool {
        matches!(
            (self, label),
            (Verdict::Pass, Label::Pass) | (Verdict::Fail, Label::Fail)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Invalid => "INVALID",
        }
    }
}

impl From<Label> for Verdict {
    fn from(label: Label) -> Self {
        match label {
            Label::Pass => Verdict::Pass,
            Label::Fail => Verdict::Fail,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One (question, passage, answer, label) row. `task` is HaluBench's `source_ds`, kept with
/// the dataset's own spelling (`covidQA`, not `CovidQA`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub id: String,
    pub task: String,
    pub passage: String,
    pub question: String,
    pub answer: String,
    pub label: Label,
}

/// The journal record of one judged example: everything needed to score it again without
/// calling the judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub id: String,
    pub task: String,
    pub label: Label,
    pub verdict: Verdict,
    /// The judge's reply exactly as received (empty when the call itself failed).
    pub raw: String,
    pub latency_ms: f64,
    /// Why the verdict is `Invalid` when the judge could not be asked or answered nothing
    /// usable (for example a request the server rejected). `None` for an ordinary reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why a reply carries no verdict (`no_score`, `truncated`, ...), when it is `INVALID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Tokens the judge spent, for judges that report them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The model name the judge reported back (a server may serve another model than asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The reply came from the response cache: no call was made and nothing was spent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// The judge's own probability, in [0, 1], that the answer is a hallucination (FAIL),
    /// for judges that give one; never derived from the verdict alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_fail: Option<f64>,
    /// The RAGAS judge's working: both replies, the statement count and the score. Absent
    /// for every other judge (and in journals written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ragas: Option<RagasTrace>,
}

/// What the RAGAS faithfulness judge did for one example, journaled so that its verdict can
/// be checked (and read again under another threshold) without calling the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RagasTrace {
    /// Answer sentences sent for statement generation (after `paper` mode's period filter).
    pub sentences: usize,
    /// The statement-generation reply that was used: the repaired one after a repair
    /// request. Empty when no call was made (no sentence to send).
    pub statements_reply: String,
    /// The verification reply that was used; `None` when there was no statement to verify
    /// or the statements could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_reply: Option<String>,
    /// Replies that were not valid JSON of the asked shape and got a repair request, in
    /// the order they came.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_replies: Vec<String>,
    /// Standalone statements the model made of the answer.
    pub statements: usize,
    /// Statements the model found directly inferable from the passage.
    pub supported: usize,
    /// `supported / statements`; `None` when there is no score (no statements, or a reply
    /// that stayed malformed after its repair): ragas' NaN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// Tokens spent on one call, as the judge reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

impl Judgement {
    /// A verdict on an example and nothing else (no reply text, timing, usage or model):
    /// all that scoring reads.
    pub fn new(
        id: impl Into<String>,
        task: impl Into<String>,
        label: Label,
        verdict: Verdict,
    ) -> Judgement {
        Judgement {
            id: id.into(),
            task: task.into(),
            label,
            verdict,
            raw: String::new(),
            latency_ms: 0.0,
            error: None,
            invalid_reason: None,
            usage: None,
            model: None,
            cached: false,
            p_fail: None,
            ragas: None,
        }
    }

    pub fn is_correct(&self) -> bool {
        self.verdict.is_correct(self.label)
    }
}

/// HaluBench's six tasks in the column order of the paper's Table 3: the dataset's
/// `source_ds` spelling first, the paper's column heading second.
pub const PAPER_TASKS: [(&str, &str); 6] = [
    ("halueval", "HaluEval"),
    ("RAGTruth", "RAGTruth"),
    ("FinanceBench", "FinanceBench"),
    ("DROP", "DROP"),
    ("covidQA", "CovidQA"),
    ("pubmedQA", "PubMedQA"),
];

/// The heading the paper uses for a `source_ds` value, or the value itself for tasks the
/// paper does not have.
pub fn task_heading(source_ds: &str) -> &str {
    PAPER_TASKS
        .iter()
        .find(|(name, _)| *name == source_ds)
        .map_or(source_ds, |(_, heading)| heading)
}

/// Sort key that puts the paper's tasks first in the paper's order, then any other task
/// alphabetically.
pub fn task_order(source_ds: &str) -> (usize, &str) {
    let position = PAPER_TASKS
        .iter()
        .position(|(name, _)| *name == source_ds)
        .unwrap_or(PAPER_TASKS.len());
    (position, source_ds)
}

/// Where a run's examples came from: enough to tell whether two runs judged the same data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Registry name, or `path` for a file given directly.
    pub name: String,
    /// Where the bytes were read from (a file path, or `embedded`).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub sha256: String,
    /// Rows in the file, before any selection.
    pub rows: usize,
}

/// Which examples of the dataset a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Tasks the run was restricted to; empty means all.
    pub tasks: Vec<String>,
    /// Examples per task; `None` means all.
    pub limit: Option<usize>,
    pub seed: u64,
    /// Examples selected.
    pub examples: usize,
}

/// A judge as recorded in `run.toml`: its name and the settings that shape its verdicts.
/// Secrets never appear here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeInfo {
    pub name: String,
    /// sha256 of the prompt template, for judges that use one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_sha256: Option<String>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// The contents of `run.toml`: what was run, on what, with which harness, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub run_id: String,
    pub harness_version: String,
    /// The scoring rule every accuracy in the report uses.
    pub accuracy_rule: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub dataset: DatasetInfo,
    pub selection: Selection,
    pub judge: JudgeInfo,
}

/// The rule the harness scores by, written into every manifest so a number is never read
/// under the wrong rule (the official scripts disagree on this).
pub const ACCURACY_RULE: &str =
    "correct / all selected rows of the task; INVALID verdicts count as wrong; nothing dropped";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_is_never_correct() {
        assert!(!Verdict::Invalid.is_correct(Label::Pass));
        assert!(!Verdict::Invalid.is_correct(Label::Fail));
        assert!(Verdict::Pass.is_correct(Label::Pass));
        assert!(!Verdict::Pass.is_correct(Label::Fail));
        assert!(Verdict::Fail.is_correct(Label::Fail));
    }

    #[test]
    fn labels_parse_only_exact_spellings() {
        assert_eq!(Label::parse("PASS"), Some(Label::Pass));
        assert_eq!(Label::parse("FAIL"), Some(Label::Fail));
        assert_eq!(Label::parse("pass"), None);
        assert_eq!(Label::parse(" PASS"), None);
    }

    #[test]
    fn paper_tasks_sort_first_in_paper_order() {
        let mut tasks = vec!["pubmedQA", "zeta", "DROP", "halueval", "alpha", "covidQA"];
        tasks.sort_by_key(|t| task_order(t));
        assert_eq!(
            tasks,
            ["halueval", "DROP", "covidQA", "pubmedQA", "alpha", "zeta"]
        );
        assert_eq!(task_heading("covidQA"), "CovidQA");
        assert_eq!(task_heading("custom"), "custom");
    }
}
