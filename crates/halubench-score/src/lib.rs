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
//! For judges that give a probability (`Judgement::p_fail`), [`ranking`] scores it without a
//! threshold: AUROC, average precision, Brier score and calibration error.

pub mod bootstrap;
pub mod compare;
mod error;
pub mod gate;
pub mod metrics;
mod pairs;
pub mod paper;
pub mod ranking;
mod rng;
pub mod rule;
pub mod significance;
pub mod votes;

pub use error::ScoreError;
pub use rule::AccuracyRule;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use halubench_core::{Judgement, Table, Usage, Verdict, markdown_cell, task_heading, task_order};
use serde::{Deserialize, Serialize};

/// Counts and accuracies for one task (or for all rows).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskScore {
    pub n: usize,
    pub correct: usize,
    pub invalid: usize,
    /// `correct / n`; invalid verdicts count as wrong. `None` when the accuracy rule left
    /// no rows (a task it emptied): no score, rather than a 0 that reads as a collapse.
    pub accuracy: Option<f64>,
    pub pass_n: usize,
    pub pass_correct: usize,
    /// Accuracy on the rows labelled PASS; `None` when there are none.
    pub pass_accuracy: Option<f64>,
    pub fail_n: usize,
    pub fail_correct: usize,
    /// Accuracy on the rows labelled FAIL; `None` when there are none.
    pub fail_accuracy: Option<f64>,
    /// The threshold-free scores of `p_fail` on this task's rows that have one.
    #[serde(flatten)]
    pub confidence: ConfidenceScores,
    /// The best balanced accuracy any threshold on `p_fail` reaches on the scored rows, to
    /// set beside the verdict's (the mean of PASS and FAIL accuracy). In-sample, so
    /// optimistic: what the confidence could give, not what a threshold chosen beforehand
    /// would. `None` unless both classes are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_balanced_accuracy: Option<f64>,
    /// The threshold that reaches it (FAIL when `p_fail` ≥ it); absent when it is "never
    /// FAIL" (infinite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_threshold: Option<f64>,
}

/// The mean, or 0 of nothing (a summary of no rows).
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The threshold-free scores of the judge's confidence `p_fail` over some rows: empty (and
/// absent from `summary.json`) for judges that give no probability. See
/// [`ranking::ThresholdFree`] for each score's definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceScores {
    /// Rows whose judgement has a usable `p_fail` (finite, in `[0, 1]`), which the scores
    /// below are computed from.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub n_scored: usize,
    /// AUROC of `p_fail`, FAIL the positive class; `None` unless both classes are scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
    /// Average precision of `p_fail` for the FAIL class; `None` without a scored FAIL row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_auc: Option<f64>,
    /// Brier score of `p_fail`; `None` when nothing is scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brier: Option<f64>,
    /// Expected calibration error of `p_fail` in [`ranking::DEFAULT_ECE_BINS`] bins; `None`
    /// when nothing is scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ece: Option<f64>,
}

impl ConfidenceScores {
    fn of(m: &metrics::Metrics) -> ConfidenceScores {
        m.threshold_free
            .as_ref()
            .map_or_else(ConfidenceScores::default, |t| ConfidenceScores {
                n_scored: t.n_scored,
                auroc: t.auroc,
                pr_auc: t.pr_auc,
                brier: Some(t.brier),
                ece: Some(t.ece),
            })
    }
}

impl TaskScore {
    fn from_metrics(m: &metrics::Metrics) -> TaskScore {
        let best = m
            .threshold_free
            .as_ref()
            .and_then(|t| t.best_balanced_accuracy);
        TaskScore {
            n: m.n,
            correct: m.correct,
            invalid: m.invalid,
            accuracy: (m.n > 0).then_some(m.accuracy),
            pass_n: m.confusion.pass.total(),
            pass_correct: m.confusion.pass.pass,
            pass_accuracy: m.pass_accuracy,
            fail_n: m.confusion.fail.total(),
            fail_correct: m.confusion.fail.fail,
            fail_accuracy: m.fail_accuracy,
            confidence: ConfidenceScores::of(m),
            best_balanced_accuracy: best.map(|b| b.balanced_accuracy),
            best_threshold: best.map(|b| b.threshold).filter(|t| t.is_finite()),
        }
    }

    /// The mean of PASS and FAIL accuracy at the judge's verdicts.
    fn balanced_accuracy(&self) -> Option<f64> {
        Some((self.pass_accuracy? + self.fail_accuracy?) / 2.0)
    }
}

/// The scores of a run: what `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows judged.
    pub n: usize,
    /// Unweighted mean of the task accuracies (the paper's "Overall"), over the tasks with
    /// rows left to count.
    pub overall_macro: f64,
    /// Accuracy over all rows, every row weighted equally.
    pub overall_micro: f64,
    pub invalid: usize,
    /// Why replies were INVALID (`no_score`, `truncated`, `error` for calls that got no
    /// reply, ...), over all rows.
    pub invalid_reasons: BTreeMap<String, usize>,
    /// Tokens the judge reported, summed over all rows.
    pub tokens: Usage,
    /// What the calls made cost, when a price is known for the model. Replies served from
    /// the response cache are not counted: they cost nothing this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// What the replies served from the response cache would have cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_avoided_usd: Option<f64>,
    /// The threshold-free scores of `p_fail` pooled over all rows that have one (not means
    /// of the tasks' scores).
    #[serde(flatten)]
    pub confidence: ConfidenceScores,
    /// Keyed by the dataset's `source_ds` spelling. Each task's `n` is the denominator the
    /// rule left.
    pub tasks: BTreeMap<String, TaskScore>,
    /// The accuracy rule the scores follow (absent from summaries written before rules were
    /// recorded, which all followed `paper`).
    #[serde(default)]
    pub rule: AccuracyRule,
    /// Rows the rule left out of each task's denominator; absent when none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped: BTreeMap<String, usize>,
}

impl Summary {
    /// The summary of one run under `rule` (see [`rule::apply`]).
    pub fn under_rule(
        rule: AccuracyRule,
        judgements: &[Judgement],
        lengths: Option<&rule::PromptLengths>,
    ) -> Result<Summary, ScoreError> {
        let ruled = rule::apply(rule, &[judgements], lengths)?;
        let mut summary = Summary::from_judgements(ruled.runs.first().into_iter().flatten());
        // A task the rule emptied stays, with no rows: it was judged, and the reader must
        // see that it is not in Overall.
        for task in ruled.dropped.keys() {
            summary.tasks.entry(task.clone()).or_default();
        }
        summary.overall_macro = mean(summary.tasks.values().filter_map(|t| t.accuracy));
        summary.rule = rule;
        summary.dropped = ruled.dropped;
        Ok(summary)
    }

    /// The accuracy and confidence scores are [`metrics::metrics`]'s, reshaped; only the
    /// token totals and the reasons for INVALID are counted here.
    pub fn from_judgements<'a>(judgements: impl IntoIterator<Item = &'a Judgement>) -> Summary {
        let judgements: Vec<&Judgement> = judgements.into_iter().collect();
        let report = metrics::metrics(judgements.iter().copied());
        let mut tokens = Usage::default();
        let mut invalid_reasons = BTreeMap::new();
        for judgement in &judgements {
            tokens += judgement.usage.unwrap_or_default();
            if judgement.verdict == Verdict::Invalid {
                let reason = match (&judgement.invalid_reason, &judgement.error) {
                    (Some(reason), _) => reason.as_str(),
                    (None, Some(_)) => "error",
                    (None, None) => "unspecified",
                };
                *invalid_reasons.entry(reason.to_string()).or_insert(0) += 1;
            }
        }
        Summary {
            n: report.all_rows.n,
            overall_macro: report.overall_macro,
            overall_micro: report.all_rows.accuracy,
            invalid: report.all_rows.invalid,
            invalid_reasons,
            tokens,
            cost_usd: None,
            cost_avoided_usd: None,
            confidence: ConfidenceScores::of(&report.all_rows),
            tasks: report
                .tasks
                .iter()
                .map(|(task, m)| (task.clone(), TaskScore::from_metrics(m)))
                .collect(),
            rule: AccuracyRule::Paper,
            dropped: BTreeMap::new(),
        }
    }

    /// Tasks in the paper's column order, then any others alphabetically.
    fn ordered_tasks(&self) -> Vec<(&str, &TaskScore)> {
        let mut tasks: Vec<_> = self.tasks.iter().map(|(k, v)| (k.as_str(), v)).collect();
        tasks.sort_by_key(|(name, _)| task_order(name));
        tasks
    }

    /// The paper-layout table: in each row a label, then one cell per task, then Overall.
    /// Task names are data: [`Table`] escapes them for markdown and quotes them for
    /// CSV. The rows of `p_fail` scores appear only when some row has one, so a judge without
    /// probabilities gets the table it always had; their Overall is the unweighted mean of
    /// the tasks, like every other row (the pooled values are in `summary.json`).
    fn table(&self) -> Table {
        let tasks = self.ordered_tasks();
        let mut header = vec!["metric".to_string()];
        header.extend(tasks.iter().map(|(name, _)| task_heading(name).to_string()));
        header.push("Overall".to_string());

        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}", v * 100.0));
        let row = |label: &str, cell: &dyn Fn(&TaskScore) -> String, overall: String| {
            let mut cells = vec![label.to_string()];
            cells.extend(tasks.iter().map(|(_, t)| cell(t)));
            cells.push(overall);
            cells
        };
        let macro_of = |f: fn(&TaskScore) -> Option<f64>| {
            let values: Vec<f64> = tasks.iter().filter_map(|(_, t)| f(t)).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let mut rows = vec![
            row(
                "accuracy (%)",
                &|t| pct(t.accuracy),
                pct(Some(self.overall_macro)),
            ),
            row(
                "PASS accuracy (%)",
                &|t| pct(t.pass_accuracy),
                pct(macro_of(|t| t.pass_accuracy)),
            ),
            row(
                "FAIL accuracy (%)",
                &|t| pct(t.fail_accuracy),
                pct(macro_of(|t| t.fail_accuracy)),
            ),
            row(
                "invalid",
                &|t| t.invalid.to_string(),
                self.invalid.to_string(),
            ),
            row("n", &|t| t.n.to_string(), self.n.to_string()),
        ];
        if !self.dropped.is_empty() {
            let mut cells = vec!["dropped by the rule".to_string()];
            cells.extend(
                tasks
                    .iter()
                    .map(|(name, _)| self.dropped.get(*name).copied().unwrap_or(0).to_string()),
            );
            cells.push(self.dropped.values().sum::<usize>().to_string());
            rows.push(cells);
        }
        if self.confidence.n_scored > 0 {
            let score = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            rows.extend([
                row(
                    "AUROC",
                    &|t| score(t.confidence.auroc),
                    score(macro_of(|t| t.confidence.auroc)),
                ),
                row(
                    "AP (FAIL)",
                    &|t| score(t.confidence.pr_auc),
                    score(macro_of(|t| t.confidence.pr_auc)),
                ),
                row(
                    "Brier",
                    &|t| score(t.confidence.brier),
                    score(macro_of(|t| t.confidence.brier)),
                ),
                row(
                    &format!("ECE ({} bins)", ranking::DEFAULT_ECE_BINS),
                    &|t| score(t.confidence.ece),
                    score(macro_of(|t| t.confidence.ece)),
                ),
                row(
                    "balanced acc. at the verdict (%)",
                    &|t| pct(t.balanced_accuracy()),
                    pct(macro_of(TaskScore::balanced_accuracy)),
                ),
                row(
                    "best balanced acc. over thresholds (%)",
                    &|t| pct(t.best_balanced_accuracy),
                    pct(macro_of(|t| t.best_balanced_accuracy)),
                ),
                row(
                    "n scored",
                    &|t| t.confidence.n_scored.to_string(),
                    self.confidence.n_scored.to_string(),
                ),
            ]);
        }
        Table { header, rows }
    }

    /// `summary.md`: the paper's Table 3 layout for this run.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {}\n", markdown_cell(title));
        out.push_str(&self.table().to_markdown());
        let _ = writeln!(
            out,
            "\nOverall is the unweighted mean of the tasks present (the paper's rule); over all {} rows \
             accuracy is {:.1}%.\n\nRule: {}: {}; n is each task's denominator.",
            self.n,
            self.overall_micro * 100.0,
            self.rule,
            self.rule.description()
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
        self.table().to_csv()
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
    use halubench_core::Label;

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
    fn a_task_the_rule_empties_has_no_accuracy_rather_than_zero() {
        use Label::*;
        use Verdict as V;
        let judgements = [
            judgement("DROP", Pass, V::Invalid),
            judgement("DROP", Fail, V::Invalid),
            judgement("halueval", Pass, V::Pass),
            judgement("halueval", Fail, V::Pass),
        ];
        let s = Summary::under_rule(AccuracyRule::ExcludeInvalid, &judgements, None)
            .expect("exclude-invalid needs no prompt lengths");
        let drop = &s.tasks["DROP"];
        assert_eq!((drop.n, drop.accuracy), (0, None));
        assert_eq!(s.dropped["DROP"], 2);
        assert!((s.overall_macro - 0.5).abs() < 1e-12, "{}", s.overall_macro);
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).expect("json");
        assert!(json["tasks"]["DROP"]["accuracy"].is_null(), "{json}");
        assert_eq!(json["tasks"]["halueval"]["accuracy"], 0.5);
        let read: Summary = serde_json::from_value(json).expect("reads back");
        assert_eq!(read, s);
    }

    #[test]
    fn accuracy_counts_invalid_as_wrong_and_overall_is_macro() {
        let s = Summary::from_judgements(&sample());
        let drop = &s.tasks["DROP"];
        assert_eq!((drop.n, drop.correct, drop.invalid), (4, 3, 1));
        assert_eq!(drop.accuracy, Some(0.75));
        assert_eq!(drop.pass_accuracy, Some(0.5));
        assert_eq!(drop.fail_accuracy, Some(1.0));
        assert_eq!(s.tasks["halueval"].accuracy, Some(0.5));
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
    fn ordinary_tables_are_unchanged() {
        let s = Summary::from_judgements(&sample());
        assert_eq!(
            s.to_csv(),
            "metric,HaluEval,DROP,Overall\n\
             accuracy (%),50.0,75.0,62.5\n\
             PASS accuracy (%),0.0,50.0,25.0\n\
             FAIL accuracy (%),100.0,100.0,100.0\n\
             invalid,0,1,1\n\
             n,2,4,6\n"
        );
        let md = s.to_markdown("t");
        assert!(
            md.starts_with(
                "# t\n\n\
                 | metric | HaluEval | DROP | Overall |\n\
                 |---|---:|---:|---:|\n\
                 | accuracy (%) | 50.0 | 75.0 | 62.5 |\n\
                 | PASS accuracy (%) | 0.0 | 50.0 | 25.0 |\n\
                 | FAIL accuracy (%) | 100.0 | 100.0 | 100.0 |\n\
                 | invalid | 0 | 1 | 1 |\n\
                 | n | 2 | 4 | 6 |\n\
                 \nOverall is"
            ),
            "{md}"
        );
    }

    const HOSTILE: &str = "a,\"b\"\nc|d";

    fn hostile_summary() -> Summary {
        let mut judgements = sample();
        judgements.push(judgement(HOSTILE, Label::Pass, Verdict::Pass));
        judgements.push(judgement("`x` <b>y</b>\r\n\\", Label::Fail, Verdict::Pass));
        Summary::from_judgements(&judgements)
    }

    #[test]
    fn csv_task_names_round_trip() {
        let s = hostile_summary();
        let text = s.to_csv();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let records: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.expect("record").iter().map(str::to_string).collect())
            .collect();
        assert_eq!(records.len(), 6, "{text}");
        let mut header = vec!["metric", "HaluEval", "DROP"];
        let mut others: Vec<&str> = vec![HOSTILE, "`x` <b>y</b>\r\n\\"];
        others.sort();
        header.extend(others);
        header.push("Overall");
        assert_eq!(records[0], header, "{text}");
        for record in &records {
            assert_eq!(record.len(), header.len(), "{text}");
        }
        let hostile = header.iter().position(|h| *h == HOSTILE).expect("column");
        assert_eq!(records[1][0], "accuracy (%)");
        assert_eq!(records[1][hostile], "100.0");
        assert_eq!(records[5][hostile], "1");
    }

    /// The cells of one markdown table row: split at the `|`s no backslash escapes.
    fn markdown_cells(line: &str) -> Vec<String> {
        let mut cells = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let cell = cells.last_mut().expect("a cell");
                    cell.push(c);
                    cell.extend(chars.next());
                }
                '|' => cells.push(String::new()),
                c => cells.last_mut().expect("a cell").push(c),
            }
        }
        // Text before the leading `|` and after the trailing one.
        assert_eq!(cells.first().map(String::as_str), Some(""), "{line}");
        assert_eq!(cells.last().map(String::as_str), Some(""), "{line}");
        cells[1..cells.len() - 1].to_vec()
    }

    #[test]
    fn markdown_task_names_keep_every_row_whole() {
        let s = hostile_summary();
        let md = s.to_markdown("t");
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        // Header, alignment, five metrics: a line break in a name made no extra line.
        assert_eq!(rows.len(), 7, "{md}");
        let columns = s.tasks.len() + 2;
        for row in &rows {
            assert_eq!(markdown_cells(row).len(), columns, "{row:?} in\n{md}");
        }
        let header = markdown_cells(rows[0]);
        assert!(
            header.contains(&" a,\"b\"<br>c\\|d ".to_string()),
            "{header:?}"
        );
        assert!(
            header.contains(&" \\`x\\` \\<b>y\\</b><br>\\\\ ".to_string()),
            "{header:?}"
        );
        assert!(!md.contains(" <b>"), "{md}");
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
