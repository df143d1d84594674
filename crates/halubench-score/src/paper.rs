//! The Lynx paper's Table 3 (Ravi et al., 2024, arXiv 2407.08488) as data, and a comparison
//! of a run's per-task accuracies with one of its rows: a cell is consistent with the paper
//! when the paper's value lies inside the run's bootstrap interval widened by a tolerance.
//!
//! The paper's Overall is the unweighted mean of the six task accuracies, but several
//! reported Overall values are not the mean of their own cells, beyond what rounding the cells
//! to one decimal explains (Claude-3-Sonnet: 78.8 reported, 82.6 from its cells). A run is
//! therefore compared cell by cell, and its Overall with the mean of the paper's cells; the
//! reported value is shown beside it with a note.

use std::collections::BTreeMap;

use halubench_core::{PAPER_TASKS, Table, markdown_cell, task_heading};
use serde::Serialize;

use crate::ScoreError;
use crate::rule::AccuracyRule;

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

/// How far, in percentage points, the paper's value may lie outside a run's interval and
/// still be consistent, unless the user says otherwise: the paper rounds to 0.1, and its
/// runs differ from ours in details no interval covers.
pub const DEFAULT_TOLERANCE_PP: f64 = 1.0;

/// Rows of each paper task in the full HaluBench test split, in the order of
/// [`PAPER_TASKS`]: 14,900 in all.
pub const HALUBENCH_TASK_ROWS: [usize; 6] = [10_000, 900, 1_000, 1_000, 1_000, 1_000];

/// Whether the paper's number is what the run measured, up to its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reproduction {
    /// The paper's value lies inside the run's interval widened by the tolerance.
    Consistent,
    /// It lies outside.
    Differs,
}

impl Reproduction {
    fn classify(paper_pct: f64, lower_pct: f64, upper_pct: f64, tolerance_pp: f64) -> Reproduction {
        let slack = tolerance_pp + FLOAT_SLACK_PP;
        if lower_pct - slack <= paper_pct && paper_pct <= upper_pct + slack {
            Reproduction::Consistent
        } else {
            Reproduction::Differs
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reproduction::Consistent => "consistent",
            Reproduction::Differs => "differs",
        }
    }
}

/// A run's accuracy on one task with its bootstrap interval (fractions 0–1; `None` when the
/// rule left no row to count), the rows the rule counted, and the rows the run selected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunTask {
    pub interval: Option<crate::bootstrap::Interval>,
    pub counted: usize,
    pub selected: usize,
}

/// One paper cell beside the run. Values are percentages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellComparison {
    /// The paper's value (for Overall: the mean of its six cells).
    pub paper: f64,
    /// The run's accuracy and its bootstrap interval; `None` when the run lacks the task.
    pub estimate: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// `estimate − paper`, in percentage points.
    pub diff_pp: Option<f64>,
    /// Whether `paper` lies in `[lower − tolerance, upper + tolerance]`.
    pub verdict: Option<Reproduction>,
}

impl CellComparison {
    fn new(paper: f64, run: Option<crate::bootstrap::Interval>, tolerance_pp: f64) -> Self {
        let pct = run.map(|i| (i.estimate * 100.0, i.lower * 100.0, i.upper * 100.0));
        CellComparison {
            paper,
            estimate: pct.map(|p| p.0),
            lower: pct.map(|p| p.1),
            upper: pct.map(|p| p.2),
            diff_pp: pct.map(|p| p.0 - paper),
            verdict: pct
                .map(|(_, lower, upper)| Reproduction::classify(paper, lower, upper, tolerance_pp)),
        }
    }
}

/// One task of a run beside the paper.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskComparison {
    /// The dataset's `source_ds` spelling.
    pub task: String,
    /// The paper's column heading.
    pub heading: String,
    #[serde(flatten)]
    pub cell: CellComparison,
    /// Rows of this task the run selected; `None` when it has none.
    pub selected: Option<usize>,
    /// Of those, the rows the rule counted: the denominator.
    pub counted: Option<usize>,
    /// Rows of this task in HaluBench.
    pub task_rows: usize,
}

impl TaskComparison {
    /// Whether the run judged fewer rows than HaluBench has: its number then estimates the
    /// paper's from a sample, and the interval says how well.
    pub fn partial(&self) -> bool {
        self.selected.is_some_and(|n| n < self.task_rows)
    }

    /// The denominator, and the rows judged where the rule dropped some or the run covers
    /// part of the task: `9 counted of 30 judged of 1000`, `30 of 1000`, `1000`.
    pub fn rows_cell(&self) -> String {
        let (Some(counted), Some(selected)) = (self.counted, self.selected) else {
            return "-".to_string();
        };
        let judged = if selected < self.task_rows {
            format!("{selected} of {}", self.task_rows)
        } else {
            selected.to_string()
        };
        if counted == selected {
            judged
        } else {
            format!("{counted} counted of {judged} judged")
        }
    }
}

/// The run's Overall beside the paper's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverallComparison {
    /// The mean of the paper's six cells against the run's Overall and its interval; the
    /// run's is `None` unless it has all six tasks, since an Overall over fewer tasks is
    /// another quantity.
    #[serde(flatten)]
    pub cell: CellComparison,
    /// The Overall the paper prints.
    pub paper_reported: f64,
    /// `run − reported Overall`, in percentage points.
    pub diff_from_reported_pp: Option<f64>,
}

/// A run set beside one row of Table 3: what `compare.json` lists under `reproduction`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaperComparison {
    /// The run's name.
    pub judge: String,
    /// The row of Table 3.
    pub paper: String,
    pub tolerance_pp: f64,
    /// The accuracy rule the run's numbers follow.
    pub rule: AccuracyRule,
    /// The six paper tasks, keyed by `source_ds`.
    pub tasks: BTreeMap<String, TaskComparison>,
    pub overall: OverallComparison,
    /// Caveats a reader needs: a reported Overall that is not the mean of its cells, paper
    /// tasks the run lacks, tasks only partly covered, run tasks the paper lacks.
    pub notes: Vec<String>,
}

impl PaperComparison {
    /// The six tasks in the paper's column order.
    pub fn ordered_tasks(&self) -> Vec<&TaskComparison> {
        PAPER_TASKS
            .iter()
            .filter_map(|(task, _)| self.tasks.get(*task))
            .collect()
    }

    /// Per task and Overall: the paper's value, the run's, its interval, the verdict and the
    /// rows the run covers.
    pub fn table(&self) -> Table {
        let tasks = self.ordered_tasks();
        let mut header = vec![String::new()];
        header.extend(tasks.iter().map(|t| t.heading.clone()));
        header.push("Overall".to_string());
        let cells = || tasks.iter().map(|t| &t.cell).chain([&self.overall.cell]);
        let one = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let row = |label: &str, cell: &dyn Fn(&CellComparison) -> String| {
            let mut row = vec![label.to_string()];
            row.extend(cells().map(cell));
            row
        };
        let mut rows = vec![
            row("paper", &|c| format!("{:.1}", c.paper)),
            row(&self.judge, &|c| one(c.estimate)),
            row("interval", &|c| match (c.lower, c.upper) {
                (Some(l), Some(u)) => format!("[{l:.1}, {u:.1}]"),
                _ => "-".to_string(),
            }),
            row("verdict", &|c| {
                c.verdict
                    .map_or("-".to_string(), |v| v.as_str().to_string())
            }),
        ];
        let mut covered = vec!["rows".to_string()];
        covered.extend(tasks.iter().map(|t| t.rows_cell()));
        covered.push(String::new());
        rows.push(covered);
        Table { header, rows }
    }

    /// The rule, the tolerance and the notes, as sentences.
    pub fn explanation(&self) -> String {
        let mut text = format!(
            "A cell is consistent when the paper's value lies inside the run's bootstrap \
             interval widened by {} pp on each side, and differs otherwise. The paper's \
             Overall here is the mean of its six cells. The run is read alone under its rule, \
             {}: {}.",
            self.tolerance_pp,
            self.rule,
            self.rule.description()
        );
        for note in &self.notes {
            text.push_str(&format!(" Note: {note}."));
        }
        text
    }

    /// [`Self::table`] as markdown under a heading.
    pub fn to_markdown(&self) -> String {
        format!(
            "## {} beside the paper's {}\n\n{}\n{}\n",
            markdown_cell(&self.judge),
            markdown_cell(&self.paper),
            self.table().to_markdown(),
            markdown_cell(&self.explanation())
        )
    }
}

/// One table of several reproductions, a row per judge and paper column (the six tasks,
/// then Overall): the judge, its row of Table 3, the paper's value, ours, our interval, the
/// verdict, the rule, and the rows (see [`TaskComparison::rows_cell`]). What `suite run`
/// writes as reproduction.md/csv.
pub fn reproduction_table(comparisons: &[PaperComparison]) -> Table {
    let mut table = Table::new([
        "judge",
        "paper row",
        "task",
        "paper (%)",
        "ours (%)",
        "interval",
        "verdict",
        "rule",
        "rows",
    ]);
    let one = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    for c in comparisons {
        let cells = c
            .ordered_tasks()
            .into_iter()
            .map(|t| (t.heading.as_str(), &t.cell, t.rows_cell()))
            .chain([("Overall", &c.overall.cell, String::new())]);
        for (task, cell, rows) in cells {
            table.push([
                c.judge.clone(),
                c.paper.clone(),
                task.to_string(),
                format!("{:.1}", cell.paper),
                one(cell.estimate),
                match (cell.lower, cell.upper) {
                    (Some(l), Some(u)) => format!("[{l:.1}, {u:.1}]"),
                    _ => "-".to_string(),
                },
                cell.verdict.map_or("-", Reproduction::as_str).to_string(),
                c.rule.to_string(),
                rows,
            ]);
        }
    }
    table
}

/// Sets a run (named `judge`: its per-task accuracy intervals, keyed by `source_ds`, and its
/// Overall interval) beside the paper's row for `model`. A cell is consistent when the
/// paper's value lies inside the run's interval widened by `tolerance_pp` on each side.
///
/// An error for a model not in the table, or a tolerance that is negative or not finite.
pub fn compare_with_paper(
    judge: &str,
    run: &BTreeMap<String, RunTask>,
    overall: Option<crate::bootstrap::Interval>,
    rule: AccuracyRule,
    model: &str,
    tolerance_pp: f64,
) -> Result<PaperComparison, ScoreError> {
    if !(tolerance_pp.is_finite() && tolerance_pp >= 0.0) {
        return Err(ScoreError::InvalidTolerance(tolerance_pp));
    }
    let row = paper_row(model)?;
    let tasks: BTreeMap<String, TaskComparison> = PAPER_TASKS
        .iter()
        .zip(row.accuracies)
        .zip(HALUBENCH_TASK_ROWS)
        .map(|((&(task, heading), paper_pct), task_rows)| {
            let cell = run.get(task);
            let comparison = TaskComparison {
                task: task.to_string(),
                heading: heading.to_string(),
                cell: CellComparison::new(paper_pct, cell.and_then(|c| c.interval), tolerance_pp),
                selected: cell.map(|c| c.selected),
                counted: cell.map(|c| c.counted),
                task_rows,
            };
            (task.to_string(), comparison)
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
    let headings = |pick: &dyn Fn(&TaskComparison) -> bool| -> Vec<&str> {
        PAPER_TASKS
            .iter()
            .filter_map(|(task, _)| tasks.get(*task))
            .filter(|t| pick(t))
            .map(|t| t.heading.as_str())
            .collect()
    };
    let missing = headings(&|t| t.selected.is_none());
    if !missing.is_empty() {
        notes.push(format!(
            "the run has no rows of {}; Overall is not compared",
            missing.join(", ")
        ));
    }
    let emptied = headings(&|t| t.selected.is_some() && t.cell.estimate.is_none());
    if !emptied.is_empty() {
        notes.push(format!(
            "the {rule} rule left no row of {} to count; Overall is not compared",
            emptied.join(", ")
        ));
    }
    let partial = headings(&|t| t.partial());
    if !partial.is_empty() {
        notes.push(format!(
            "the run covers only part of {}: those numbers estimate the paper's from a sample, \
             and their intervals say how closely",
            partial.join(", ")
        ));
    }
    let extra: Vec<&str> = run
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

    let complete = missing.is_empty() && emptied.is_empty();
    let cell = CellComparison::new(
        row.mean_of_cells(),
        overall.filter(|_| complete),
        tolerance_pp,
    );
    let overall = OverallComparison {
        diff_from_reported_pp: cell.estimate.map(|run| run - row.reported_overall),
        paper_reported: row.reported_overall,
        cell,
    };
    Ok(PaperComparison {
        judge: judge.to_string(),
        paper: row.model.to_string(),
        tolerance_pp,
        rule,
        tasks,
        overall,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::Interval;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn all_consistent(c: &PaperComparison) -> bool {
        c.tasks
            .values()
            .map(|t| &t.cell)
            .chain([&c.overall.cell])
            .filter_map(|c| c.verdict)
            .all(|v| v == Reproduction::Consistent)
    }

    fn point(v: f64) -> Interval {
        Interval {
            estimate: v,
            lower: v,
            upper: v,
        }
    }

    /// A run of every HaluBench row whose accuracies are exactly a paper row's cells, with
    /// zero-width intervals.
    fn run_like(row: &PaperRow) -> BTreeMap<String, RunTask> {
        PAPER_TASKS
            .iter()
            .zip(row.accuracies)
            .zip(HALUBENCH_TASK_ROWS)
            .map(|(((task, _), pct), rows)| {
                let cell = RunTask {
                    interval: Some(point(pct / 100.0)),
                    counted: rows,
                    selected: rows,
                };
                (task.to_string(), cell)
            })
            .collect()
    }

    fn compare(
        run: &BTreeMap<String, RunTask>,
        model: &str,
        tolerance: f64,
    ) -> Result<PaperComparison, ScoreError> {
        let overall = run
            .values()
            .filter_map(|t| t.interval)
            .map(|i| i.estimate)
            .sum::<f64>()
            / 6.0;
        compare_with_paper(
            "run",
            run,
            Some(point(overall)),
            AccuracyRule::Paper,
            model,
            tolerance,
        )
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
        assert_eq!(HALUBENCH_TASK_ROWS.iter().sum::<usize>(), 14_900);
    }

    #[test]
    fn claude_sonnets_overall_is_not_the_mean_of_its_cells() {
        let claude = paper_row("Claude-3-Sonnet").expect("row");
        assert!(close(claude.mean_of_cells(), 495.5 / 6.0));
        assert!(!claude.overall_is_consistent());
        let comparison = compare(&run_like(claude), "Claude-3-Sonnet", 0.5).expect("compare");
        assert!(
            comparison
                .notes
                .iter()
                .any(|n| n.contains("78.8") && n.contains("82.6")),
            "{:?}",
            comparison.notes
        );
        // A run equal to the cells matches the cells' mean, not the printed Overall.
        assert!(close(
            comparison.overall.cell.diff_pp.expect("overall"),
            0.0
        ));
        assert!(close(
            comparison.overall.diff_from_reported_pp.expect("overall"),
            495.5 / 6.0 - 78.8
        ));
        assert!(all_consistent(&comparison));
    }

    #[test]
    fn consistent_rows_get_no_note() {
        for model in ["GPT-4o", "Lynx (8B)", "Lynx (70B)", "Llama-3-Instruct-70B"] {
            let row = paper_row(model).expect("row");
            assert!(row.overall_is_consistent(), "{model}");
            let comparison = compare(&run_like(row), model, 0.0).expect("compare");
            assert!(
                comparison.notes.is_empty(),
                "{model}: {:?}",
                comparison.notes
            );
            assert!(all_consistent(&comparison), "{model}");
        }
    }

    /// Paper 77.8 on DROP against intervals just inside and just outside, with and without
    /// tolerance: the verdict turns where the widened interval's edge crosses 77.8.
    #[test]
    fn verdicts_turn_at_the_widened_interval_edges() {
        let lynx = paper_row("Lynx (8B)").expect("row");
        let with_drop = |lower: f64, upper: f64| {
            let mut run = run_like(lynx);
            run.insert(
                "DROP".to_string(),
                RunTask {
                    interval: Some(Interval {
                        estimate: (lower + upper) / 2.0,
                        lower,
                        upper,
                    }),
                    counted: 1_000,
                    selected: 1_000,
                },
            );
            run
        };
        for (lower, upper, tolerance, expected) in [
            (0.700, 0.790, 0.0, Reproduction::Consistent),
            (0.777, 0.790, 0.0, Reproduction::Consistent),
            (0.779, 0.790, 0.0, Reproduction::Differs),
            (0.790, 0.850, 0.0, Reproduction::Differs),
            (0.790, 0.850, 1.2, Reproduction::Consistent),
            (0.790, 0.850, 1.1, Reproduction::Differs),
            (0.700, 0.768, 1.0, Reproduction::Consistent),
            (0.700, 0.767, 1.0, Reproduction::Differs),
            (0.778, 0.778, 0.0, Reproduction::Consistent),
        ] {
            let c = compare(&with_drop(lower, upper), "Lynx (8B)", tolerance).expect("compare");
            assert_eq!(
                c.tasks["DROP"].cell.verdict,
                Some(expected),
                "[{lower}, {upper}] ± {tolerance}"
            );
        }
        // The estimate alone decides nothing: far from the paper, but the interval holds it.
        let wide = compare(&with_drop(0.60, 0.80), "Lynx (8B)", 0.0).expect("compare");
        assert!(close(wide.tasks["DROP"].cell.diff_pp.expect("diff"), -7.8));
        assert_eq!(
            wide.tasks["DROP"].cell.verdict,
            Some(Reproduction::Consistent)
        );
    }

    #[test]
    fn missing_partial_and_extra_tasks_are_noted() {
        let mut run = run_like(paper_row("Lynx (8B)").expect("row"));
        run.remove("pubmedQA");
        if let Some(drop) = run.get_mut("DROP") {
            drop.selected = 13;
            drop.counted = 13;
        }
        run.insert(
            "custom".to_string(),
            RunTask {
                interval: Some(point(0.5)),
                counted: 5,
                selected: 5,
            },
        );
        let c = compare(&run, "Lynx (8B)", 1.0).expect("compare");
        assert_eq!(c.tasks["pubmedQA"].cell.estimate, None);
        assert_eq!(c.tasks["pubmedQA"].cell.verdict, None);
        assert!(c.tasks["DROP"].partial());
        assert!(!c.tasks["halueval"].partial());
        assert_eq!(c.overall.cell.estimate, None, "no Overall over five tasks");
        assert_eq!(
            c.ordered_tasks()[0].heading,
            "HaluEval",
            "paper column order"
        );
        assert_eq!(c.notes.len(), 3, "{:?}", c.notes);
        assert!(c.notes[0].contains("PubMedQA"));
        assert!(c.notes[1].contains("only part of DROP"));
        assert!(c.notes[2].contains("custom"));
        let md = c.to_markdown();
        assert!(
            md.contains("| rows | 10000 | 900 | 1000 | 13 of 1000 |"),
            "{md}"
        );
        let json = serde_json::to_value(&c).unwrap_or_default();
        let drop = &json["tasks"]["DROP"];
        for key in ["paper", "estimate", "lower", "upper", "verdict"] {
            assert!(!drop[key].is_null(), "{key}: {drop}");
        }
        assert_eq!(drop["verdict"], "consistent");
        assert_eq!(json["judge"], "run");
        assert_eq!(json["paper"], "Lynx (8B)");
    }

    /// A task whose every row the rule dropped is not "missing": the note says the rule
    /// emptied it, and the rows cell shows the denominator beside the rows judged.
    #[test]
    fn a_task_the_rule_emptied_is_named_as_such() {
        let mut run = run_like(paper_row("RAGAS Faithfulness").expect("row"));
        run.insert(
            "DROP".to_string(),
            RunTask {
                interval: None,
                counted: 0,
                selected: 13,
            },
        );
        if let Some(covid) = run.get_mut("covidQA") {
            covid.counted = 812;
        }
        let c = compare_with_paper(
            "ragas",
            &run,
            Some(point(0.7)),
            AccuracyRule::ExcludeInvalid,
            "RAGAS Faithfulness",
            1.0,
        )
        .expect("compare");
        assert_eq!(c.tasks["DROP"].cell.verdict, None);
        assert_eq!(c.overall.cell.estimate, None, "no Overall without DROP");
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("exclude-invalid rule left no row of DROP")),
            "{:?}",
            c.notes
        );
        assert_eq!(
            c.tasks["DROP"].rows_cell(),
            "0 counted of 13 of 1000 judged"
        );
        assert_eq!(c.tasks["covidQA"].rows_cell(), "812 counted of 1000 judged");
        assert_eq!(c.tasks["halueval"].rows_cell(), "10000");
    }

    #[test]
    fn bad_tolerance_is_an_error() {
        let run = BTreeMap::new();
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                compare(&run, "GPT-4o", bad),
                Err(ScoreError::InvalidTolerance(_))
            ));
        }
    }
}
