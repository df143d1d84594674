//! The Lynx paper's Table 3 (Ravi et al., 2024, arXiv 2407.08488) as data, and a comparison
//! of a run's per-task accuracies with one of its rows.
//!
//! The paper's Overall is the unweighted mean of the six task accuracies, but several
//! reported Overall values are not the mean of their own cells, beyond what rounding the cells
//! to one decimal explains (Claude-3-Sonnet: 78.8 reported, 82.6 from its cells). A run is
//! therefore compared cell by cell, and its Overall with the mean of the paper's cells; the
//! reported value is shown beside it with a note.

use std::collections::BTreeMap;

use halubench_core::{PAPER_TASKS, Table, task_heading};
use serde::Serialize;

use crate::ScoreError;

/// One row of Table 3: accuracy in percent, as printed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PaperRow {
    pub model: &'static str,
    /// In the order of [`PAPER_TASKS`]: HaluEval, RAGTruth, FinanceBench, DROP, CovidQA,
    /// PubMedQA.
    pub accuracies: [f64; 6],
    /// The Overall column as printed.
    pub reported_overall: f64,
}

/// Table 3 of the paper, rows in the paper's order.
pub const TABLE_3: [PaperRow; 10] = [
    row("GPT-4o", [87.9, 84.3, 85.3, 84.3, 95.0, 82.1], 86.5),
    row("GPT-4-Turbo", [86.0, 85.0, 82.2, 84.8, 90.6, 83.5], 85.0),
    row("GPT-3.5-Turbo", [62.2, 50.7, 60.9, 57.2, 56.7, 62.8], 58.7),
    row(
        "Claude-3-Sonnet",
        [84.5, 79.1, 69.7, 84.3, 95.0, 82.9],
        78.8,
    ),
    row(
        "RAGAS Faithfulness",
        [70.6, 75.8, 59.5, 59.6, 75.0, 67.7],
        66.9,
    ),
    row(
        "Mistral-Instruct-7B",
        [78.3, 77.7, 56.3, 56.3, 71.7, 77.9],
        69.4,
    ),
    row(
        "Llama-3-Instruct-8B",
        [83.1, 80.0, 55.0, 58.2, 75.2, 70.7],
        70.4,
    ),
    row(
        "Llama-3-Instruct-70B",
        [87.0, 83.8, 72.7, 69.4, 85.0, 82.6],
        80.1,
    ),
    row("Lynx (8B)", [85.7, 80.0, 72.5, 77.8, 96.3, 85.2], 82.9),
    row("Lynx (70B)", [88.4, 80.2, 81.4, 86.4, 97.5, 90.4], 87.4),
];

const fn row(model: &'static str, accuracies: [f64; 6], reported_overall: f64) -> PaperRow {
    PaperRow {
        model,
        accuracies,
        reported_overall,
    }
}

/// How far a reported Overall may lie from the mean of its printed cells through rounding
/// alone: the cells' mean is off by at most 0.05 and the printed Overall by at most 0.05.
pub const ROUNDING_SLACK_PP: f64 = 0.1;

/// Float noise allowed on top of a tolerance, so that a difference of exactly the tolerance
/// (0.857 · 100 − 85.7 is not exactly 0 in binary) still counts as within it.
const FLOAT_SLACK_PP: f64 = 1e-9;

impl PaperRow {
    /// The paper's accuracy (%) for a `source_ds` name (`covidQA`, not `CovidQA`).
    pub fn accuracy(&self, source_ds: &str) -> Option<f64> {
        PAPER_TASKS
            .iter()
            .zip(self.accuracies)
            .find(|((name, _), _)| *name == source_ds)
            .map(|(_, accuracy)| accuracy)
    }

    /// The unweighted mean of the six cells: what Overall should be by the paper's rule.
    pub fn mean_of_cells(&self) -> f64 {
        self.accuracies.iter().sum::<f64>() / self.accuracies.len() as f64
    }

    /// Whether the reported Overall is the mean of the cells up to rounding.
    pub fn overall_is_consistent(&self) -> bool {
        (self.reported_overall - self.mean_of_cells()).abs() <= ROUNDING_SLACK_PP + FLOAT_SLACK_PP
    }
}

/// The row for a model, by its name exactly as in the paper (`Lynx (8B)`, `GPT-4o`).
pub fn paper_row(model: &str) -> Result<&'static PaperRow, ScoreError> {
    TABLE_3
        .iter()
        .find(|row| row.model == model)
        .ok_or_else(|| ScoreError::UnknownModel {
            model: model.to_string(),
            known: TABLE_3.iter().map(|row| row.model.to_string()).collect(),
        })
}

/// Table 3 keyed by model name.
pub fn table_3() -> BTreeMap<&'static str, &'static PaperRow> {
    TABLE_3.iter().map(|row| (row.model, row)).collect()
}

/// One task of a run beside the paper.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskComparison {
    /// The dataset's `source_ds` spelling.
    pub task: String,
    /// The paper's column heading.
    pub heading: String,
    pub paper_pct: f64,
    /// `None` when the run has no rows of this task.
    pub run_pct: Option<f64>,
    /// `run − paper`, in percentage points.
    pub diff_pp: Option<f64>,
    pub within_tolerance: Option<bool>,
}

/// The run's Overall beside the paper's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverallComparison {
    /// The Overall the paper prints.
    pub paper_reported_pct: f64,
    /// The mean of the paper's six cells.
    pub paper_mean_of_cells_pct: f64,
    /// The mean of the run's accuracies on the six paper tasks; `None` unless the run has
    /// all six, since an Overall over fewer tasks is another quantity.
    pub run_pct: Option<f64>,
    /// `run − mean of the paper's cells`, in percentage points: the like-for-like difference.
    pub diff_pp: Option<f64>,
    /// `run − reported Overall`, in percentage points.
    pub diff_from_reported_pp: Option<f64>,
    /// Judged on `diff_pp`.
    pub within_tolerance: Option<bool>,
}

/// A run set beside one row of Table 3.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaperComparison {
    pub model: String,
    pub tolerance_pp: f64,
    /// The six paper tasks, in the paper's column order.
    pub tasks: Vec<TaskComparison>,
    pub overall: OverallComparison,
    /// Caveats a reader needs: a reported Overall that is not the mean of its cells, paper
    /// tasks the run lacks, run tasks the paper lacks.
    pub notes: Vec<String>,
}

impl PaperComparison {
    /// The paper's row, the run's (named `judge`) and their difference, per task and Overall.
    pub fn table(&self, judge: &str) -> Table {
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let diff = |v: Option<f64>, within: Option<bool>| match (v, within) {
            (Some(v), Some(false)) => format!("{v:+.1} (beyond tolerance)"),
            (Some(v), _) => format!("{v:+.1}"),
            (None, _) => "-".to_string(),
        };
        let mut header = vec![String::new()];
        header.extend(self.tasks.iter().map(|t| t.heading.clone()));
        header.push("Overall".to_string());
        let mut paper = vec!["paper".to_string()];
        paper.extend(self.tasks.iter().map(|t| format!("{:.1}", t.paper_pct)));
        paper.push(format!("{:.1}", self.overall.paper_mean_of_cells_pct));
        let mut run = vec![judge.to_string()];
        run.extend(self.tasks.iter().map(|t| cell(t.run_pct)));
        run.push(cell(self.overall.run_pct));
        let mut difference = vec!["difference (pp)".to_string()];
        difference.extend(
            self.tasks
                .iter()
                .map(|t| diff(t.diff_pp, t.within_tolerance)),
        );
        difference.push(diff(self.overall.diff_pp, self.overall.within_tolerance));
        Table {
            header,
            rows: vec![paper, run, difference],
        }
    }

    /// The tolerance and the notes, as sentences.
    pub fn explanation(&self) -> String {
        let mut text = format!(
            "Tolerance: {} percentage points; the paper's Overall here is the mean of its six \
             cells.",
            self.tolerance_pp
        );
        for note in &self.notes {
            text.push_str(&format!(" Note: {note}."));
        }
        text
    }

    /// [`Self::table`] as markdown under a heading.
    pub fn to_markdown(&self, judge: &str) -> String {
        format!(
            "## {judge} beside the paper's {}\n\n{}\n{}\n",
            self.model,
            self.table(judge).to_markdown(),
            self.explanation()
        )
    }

    /// Whether every task the run has, and the Overall if it has one, is within tolerance.
    pub fn all_within_tolerance(&self) -> bool {
        self.tasks
            .iter()
            .filter_map(|t| t.within_tolerance)
            .chain(self.overall.within_tolerance)
            .all(|within| within)
    }
}

/// Sets a run's per-task accuracies (fractions 0–1, keyed by `source_ds`, for example
/// [`crate::metrics::Report::task_accuracies`]) beside the paper's row for `model`. A task
/// counts as within tolerance when `|run − paper| ≤ tolerance_pp` percentage points.
///
/// An error for a model not in the table, or a tolerance that is negative or not finite.
pub fn compare_with_paper(
    run_accuracies: &BTreeMap<String, f64>,
    model: &str,
    tolerance_pp: f64,
) -> Result<PaperComparison, ScoreError> {
    if !(tolerance_pp.is_finite() && tolerance_pp >= 0.0) {
        return Err(ScoreError::InvalidTolerance(tolerance_pp));
    }
    let row = paper_row(model)?;
    let within = |diff: f64| diff.abs() <= tolerance_pp + FLOAT_SLACK_PP;

    let tasks: Vec<TaskComparison> = PAPER_TASKS
        .iter()
        .zip(row.accuracies)
        .map(|(&(task, heading), paper_pct)| {
            let run_pct = run_accuracies.get(task).map(|accuracy| accuracy * 100.0);
            let diff_pp = run_pct.map(|run| run - paper_pct);
            TaskComparison {
                task: task.to_string(),
                heading: heading.to_string(),
                paper_pct,
                run_pct,
                diff_pp,
                within_tolerance: diff_pp.map(within),
            }
        })
        .collect();

    let mut notes = Vec::new();
    if !row.overall_is_consistent() {
        notes.push(format!(
            "the paper reports Overall {:.1} for {}, but the mean of its six task cells is {:.1} \
             ({:+.1} pp); the run's Overall is compared with the mean of the cells",
            row.reported_overall,
            row.model,
            row.mean_of_cells(),
            row.reported_overall - row.mean_of_cells(),
        ));
    }
    let missing: Vec<&str> = tasks
        .iter()
        .filter(|t| t.run_pct.is_none())
        .map(|t| t.heading.as_str())
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "the run has no rows of {}; Overall is not compared",
            missing.join(", ")
        ));
    }
    let extra: Vec<&str> = run_accuracies
        .keys()
        .filter(|task| row.accuracy(task).is_none())
        .map(|task| task_heading(task))
        .collect();
    if !extra.is_empty() {
        notes.push(format!(
            "tasks not in the paper, left out of the comparison: {}",
            extra.join(", ")
        ));
    }

    let run_overall = missing
        .is_empty()
        .then(|| tasks.iter().filter_map(|t| t.run_pct).sum::<f64>() / tasks.len() as f64);
    let overall = OverallComparison {
        paper_reported_pct: row.reported_overall,
        paper_mean_of_cells_pct: row.mean_of_cells(),
        run_pct: run_overall,
        diff_pp: run_overall.map(|run| run - row.mean_of_cells()),
        diff_from_reported_pp: run_overall.map(|run| run - row.reported_overall),
        within_tolerance: run_overall.map(|run| within(run - row.mean_of_cells())),
    };

    Ok(PaperComparison {
        model: row.model.to_string(),
        tolerance_pp,
        tasks,
        overall,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// A run whose accuracies are exactly a paper row's cells.
    fn run_like(row: &PaperRow) -> BTreeMap<String, f64> {
        PAPER_TASKS
            .iter()
            .zip(row.accuracies)
            .map(|((task, _), pct)| (task.to_string(), pct / 100.0))
            .collect()
    }

    #[test]
    fn table_has_every_row_of_the_reference() {
        assert_eq!(TABLE_3.len(), 10);
        assert_eq!(table_3().len(), 10, "model names are unique");
        let lynx = paper_row("Lynx (8B)").expect("row");
        assert_eq!(lynx.accuracy("covidQA"), Some(96.3));
        assert_eq!(lynx.accuracy("CovidQA"), None, "source_ds spelling only");
        assert_eq!(lynx.reported_overall, 82.9);
        assert_eq!(
            paper_row("Lynx (70B)").expect("row").accuracies,
            [88.4, 80.2, 81.4, 86.4, 97.5, 90.4]
        );
        assert!(matches!(
            paper_row("lynx-8b"),
            Err(ScoreError::UnknownModel { .. })
        ));
    }

    #[test]
    fn claude_sonnets_overall_is_not_the_mean_of_its_cells() {
        let claude = paper_row("Claude-3-Sonnet").expect("row");
        assert!(close(claude.mean_of_cells(), 495.5 / 6.0));
        assert!(!claude.overall_is_consistent());
        let comparison =
            compare_with_paper(&run_like(claude), "Claude-3-Sonnet", 0.5).expect("compare");
        assert!(
            comparison
                .notes
                .iter()
                .any(|n| n.contains("78.8") && n.contains("82.6")),
            "{:?}",
            comparison.notes
        );
        // A run equal to the cells matches the cells' mean, not the printed Overall.
        assert!(close(comparison.overall.diff_pp.expect("overall"), 0.0));
        assert!(close(
            comparison.overall.diff_from_reported_pp.expect("overall"),
            495.5 / 6.0 - 78.8
        ));
        assert!(comparison.all_within_tolerance());
    }

    #[test]
    fn consistent_rows_get_no_note() {
        for model in ["GPT-4o", "Lynx (8B)", "Lynx (70B)", "Llama-3-Instruct-70B"] {
            let row = paper_row(model).expect("row");
            assert!(row.overall_is_consistent(), "{model}");
            let comparison = compare_with_paper(&run_like(row), model, 0.0).expect("compare");
            assert!(
                comparison.notes.is_empty(),
                "{model}: {:?}",
                comparison.notes
            );
            assert!(comparison.all_within_tolerance(), "{model}");
        }
    }

    #[test]
    fn differences_are_in_percentage_points_with_a_tolerance() {
        let mut run = run_like(paper_row("Lynx (8B)").expect("row"));
        run.insert("DROP".to_string(), 0.800); // paper 77.8: +2.2 pp
        run.insert("halueval".to_string(), 0.850); // paper 85.7: −0.7 pp
        run.remove("pubmedQA");
        run.insert("custom".to_string(), 0.5);
        let c = compare_with_paper(&run, "Lynx (8B)", 1.0).expect("compare");
        let by_task: BTreeMap<&str, &TaskComparison> =
            c.tasks.iter().map(|t| (t.task.as_str(), t)).collect();
        assert!(close(by_task["DROP"].diff_pp.expect("diff"), 2.2));
        assert_eq!(by_task["DROP"].within_tolerance, Some(false));
        assert!(close(by_task["halueval"].diff_pp.expect("diff"), -0.7));
        assert_eq!(by_task["halueval"].within_tolerance, Some(true));
        assert_eq!(by_task["pubmedQA"].run_pct, None);
        assert_eq!(by_task["pubmedQA"].within_tolerance, None);
        assert_eq!(c.tasks[0].heading, "HaluEval", "paper column order");
        assert_eq!(c.overall.run_pct, None);
        assert!(!c.all_within_tolerance());
        assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
        assert!(c.notes[0].contains("PubMedQA"));
        assert!(c.notes[1].contains("custom"));
    }

    #[test]
    fn bad_tolerance_is_an_error() {
        let run = BTreeMap::new();
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                compare_with_paper(&run, "GPT-4o", bad),
                Err(ScoreError::InvalidTolerance(_))
            ));
        }
    }
}
