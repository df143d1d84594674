//! Scoring: per-task accuracy by the paper's rule, and the report files built from it
//! (`summary.json`, `summary.md`, `summary.csv`).
//!
//! Exporters are pure: a summary in, text out. Writing files is the caller's job, and this
//! crate never calls a judge; a finished run can be re-scored from its journal alone.
//!
//! Beyond accuracy it gives the statistics needed to read and compare runs: confusion
//! matrices, balanced accuracy, F1 and MCC ([`metrics`]), seeded stratified-bootstrap
//! confidence intervals ([`bootstrap`]), exact McNemar tests with Holm adjustment
//! ([`significance`]), and a comparison with the paper's Table 3 ([`paper`]); on top of
//! those, judges side by side ([`compare`]) and the nightly regression gate ([`gate`]).

pub mod bootstrap;
pub mod compare;
mod error;
pub mod gate;
pub mod metrics;
mod pairs;
pub mod paper;
mod rng;
pub mod significance;

pub use error::ScoreError;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use halubench_core::{Judgement, Label, Usage, Verdict, task_heading, task_order};
use serde::{Deserialize, Serialize};

/// Counts and accuracies for one task (or for all rows).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskScore {
    pub n: usize,
    pub correct: usize,
    pub invalid: usize,
    /// `correct / n`; invalid verdicts count as wrong.
    pub accuracy: f64,
    pub pass_n: usize,
    pub pass_correct: usize,
    /// Accuracy on the rows labelled PASS; `None` when there are none.
    pub pass_accuracy: Option<f64>,
    pub fail_n: usize,
    pub fail_correct: usize,
    /// Accuracy on the rows labelled FAIL; `None` when there are none.
    pub fail_accuracy: Option<f64>,
}

impl TaskScore {
    fn add(&mut self, judgement: &Judgement) {
        let correct = judgement.is_correct() as usize;
        self.n += 1;
        self.correct += correct;
        self.invalid += (judgement.verdict == Verdict::Invalid) as usize;
        match judgement.label {
            Label::Pass => {
                self.pass_n += 1;
                self.pass_correct += correct;
            }
            Label::Fail => {
                self.fail_n += 1;
                self.fail_correct += correct;
            }
        }
    }

    fn finish(&mut self) {
        let ratio = |num: usize, den: usize| (den > 0).then(|| num as f64 / den as f64);
        self.accuracy = ratio(self.correct, self.n).unwrap_or(0.0);
        self.pass_accuracy = ratio(self.pass_correct, self.pass_n);
        self.fail_accuracy = ratio(self.fail_correct, self.fail_n);
    }
}

/// The scores of a run: what `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows judged.
    pub n: usize,
    /// Unweighted mean of the task accuracies (the paper's "Overall").
    pub overall_macro: f64,
    /// Accuracy over all rows, every row weighted equally.
    pub overall_micro: f64,
    pub invalid: usize,
    /// Why replies were INVALID (`no_score`, `truncated`, `error` for calls that got no
    /// reply, ...), over all rows.
    pub invalid_reasons: BTreeMap<String, usize>,
    /// Tokens the judge reported, summed over all rows.
    pub tokens: Usage,
    /// What those tokens cost, when a price is known for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Keyed by the dataset's `source_ds` spelling.
    pub tasks: BTreeMap<String, TaskScore>,
}

impl Summary {
    pub fn from_judgements<'a>(judgements: impl IntoIterator<Item = &'a Judgement>) -> Summary {
        let mut tasks: BTreeMap<String, TaskScore> = BTreeMap::new();
        let mut all = TaskScore::default();
        let mut tokens = Usage::default();
        let mut invalid_reasons = BTreeMap::new();
        for judgement in judgements {
            if judgement.verdict == Verdict::Invalid {
                let reason = match (&judgement.invalid_reason, &judgement.error) {
                    (Some(reason), _) => reason.as_str(),
                    (None, Some(_)) => "error",
                    (None, None) => "unspecified",
                };
                *invalid_reasons.entry(reason.to_string()).or_insert(0) += 1;
            }
            tokens += judgement.usage.unwrap_or_default();
            tasks
                .entry(judgement.task.clone())
                .or_default()
                .add(judgement);
            all.add(judgement);
        }
        tasks.values_mut().for_each(TaskScore::finish);
        all.finish();
        let overall_macro = if tasks.is_empty() {
            0.0
        } else {
            tasks.values().map(|t| t.accuracy).sum::<f64>() / tasks.len() as f64
        };
        Summary {
            n: all.n,
            overall_macro,
            overall_micro: all.accuracy,
            invalid: all.invalid,
            invalid_reasons,
            tokens,
            cost_usd: None,
            tasks,
        }
    }

    /// Tasks in the paper's column order, then any others alphabetically.
    fn ordered_tasks(&self) -> Vec<(&str, &TaskScore)> {
        let mut tasks: Vec<_> = self.tasks.iter().map(|(k, v)| (k.as_str(), v)).collect();
        tasks.sort_by_key(|(name, _)| task_order(name));
        tasks
    }

    /// The rows of the paper-layout table: a label, then one cell per task, then Overall.
    fn table(&self) -> (Vec<String>, Vec<(&'static str, Vec<String>)>) {
        let tasks = self.ordered_tasks();
        let mut header = vec!["metric".to_string()];
        header.extend(tasks.iter().map(|(name, _)| task_heading(name).to_string()));
        header.push("Overall".to_string());

        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}", v * 100.0));
        let row = |cell: &dyn Fn(&TaskScore) -> String, overall: String| {
            let mut cells: Vec<String> = tasks.iter().map(|(_, t)| cell(t)).collect();
            cells.push(overall);
            cells
        };
        let macro_of = |f: fn(&TaskScore) -> Option<f64>| {
            let values: Vec<f64> = tasks.iter().filter_map(|(_, t)| f(t)).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let rows = vec![
            (
                "accuracy (%)",
                row(&|t| pct(Some(t.accuracy)), pct(Some(self.overall_macro))),
            ),
            (
                "PASS accuracy (%)",
                row(
                    &|t| pct(t.pass_accuracy),
                    pct(macro_of(|t| t.pass_accuracy)),
                ),
            ),
            (
                "FAIL accuracy (%)",
                row(
                    &|t| pct(t.fail_accuracy),
                    pct(macro_of(|t| t.fail_accuracy)),
                ),
            ),
            (
                "invalid",
                row(&|t| t.invalid.to_string(), self.invalid.to_string()),
            ),
            ("n", row(&|t| t.n.to_string(), self.n.to_string())),
        ];
        (header, rows)
    }

    /// `summary.md`: the paper's Table 3 layout for this run.
    pub fn to_markdown(&self, title: &str) -> String {
        let (header, rows) = self.table();
        let mut out = String::new();
        let _ = writeln!(out, "# {title}\n");
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let align: Vec<&str> = std::iter::once("---")
            .chain(header.iter().skip(1).map(|_| "---:"))
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for (label, cells) in rows {
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        let _ = writeln!(
            out,
            "\nOverall is the unweighted mean of the tasks present (the paper's rule); over all {} rows \
             accuracy is {:.1}%. INVALID replies count as wrong.",
            self.n,
            self.overall_micro * 100.0
        );
        if !self.invalid_reasons.is_empty() {
            let reasons: Vec<String> = self
                .invalid_reasons
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            let _ = writeln!(out, "\nINVALID by reason: {}.", reasons.join(", "));
        }
        out
    }

    /// `summary.csv`: the same table as `summary.md`, percentages to one decimal.
    pub fn to_csv(&self) -> String {
        let (header, rows) = self.table();
        let mut out = header.join(",");
        out.push('\n');
        for (label, cells) in rows {
            out.push_str(label);
            for cell in cells {
                out.push(',');
                out.push_str(&cell);
            }
            out.push('\n');
        }
        out
    }

    /// `summary.json`.
    pub fn to_json(&self) -> String {
        // A struct of numbers and strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judgement(task: &str, label: Label, verdict: Verdict) -> Judgement {
        Judgement::new(format!("{task}-{label}-{verdict}"), task, label, verdict)
    }

    fn sample() -> Vec<Judgement> {
        use Label::*;
        use Verdict as V;
        vec![
            // DROP: 3 of 4 right, one invalid.
            judgement("DROP", Pass, V::Pass),
            judgement("DROP", Pass, V::Invalid),
            judgement("DROP", Fail, V::Fail),
            judgement("DROP", Fail, V::Fail),
            // halueval: 1 of 2 right.
            judgement("halueval", Pass, V::Fail),
            judgement("halueval", Fail, V::Fail),
        ]
    }

    #[test]
    fn accuracy_counts_invalid_as_wrong_and_overall_is_macro() {
        let s = Summary::from_judgements(&sample());
        let drop = &s.tasks["DROP"];
        assert_eq!((drop.n, drop.correct, drop.invalid), (4, 3, 1));
        assert_eq!(drop.accuracy, 0.75);
        assert_eq!(drop.pass_accuracy, Some(0.5));
        assert_eq!(drop.fail_accuracy, Some(1.0));
        assert_eq!(s.tasks["halueval"].accuracy, 0.5);
        assert!((s.overall_macro - 0.625).abs() < 1e-12);
        assert!((s.overall_micro - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(s.invalid, 1);
    }

    #[test]
    fn markdown_uses_paper_headings_and_order() {
        let md = Summary::from_judgements(&sample()).to_markdown("t");
        assert!(
            md.contains("| metric | HaluEval | DROP | Overall |"),
            "{md}"
        );
        assert!(md.contains("| accuracy (%) | 50.0 | 75.0 | 62.5 |"), "{md}");
        assert!(md.contains("| invalid | 0 | 1 | 1 |"), "{md}");
    }

    #[test]
    fn csv_matches_the_table() {
        let csv = Summary::from_judgements(&sample()).to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "metric,HaluEval,DROP,Overall");
        assert_eq!(lines[1], "accuracy (%),50.0,75.0,62.5");
        assert_eq!(lines[2], "PASS accuracy (%),0.0,50.0,25.0");
        assert_eq!(lines[5], "n,2,4,6");
    }

    #[test]
    fn json_has_the_documented_keys() {
        let json: serde_json::Value =
            serde_json::from_str(&Summary::from_judgements(&sample()).to_json()).expect("json");
        assert_eq!(json["n"], 6);
        assert_eq!(json["tasks"]["DROP"]["correct"], 3);
        assert_eq!(json["tasks"]["DROP"]["invalid"], 1);
        assert_eq!(json["tasks"]["DROP"]["accuracy"], 0.75);
        assert_eq!(json["overall_macro"], 0.625);
    }

    #[test]
    fn empty_run_scores_zero_without_panicking() {
        let s = Summary::from_judgements(&[]);
        assert_eq!(s.n, 0);
        assert_eq!(s.overall_macro, 0.0);
    }
}
