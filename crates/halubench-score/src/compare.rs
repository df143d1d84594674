//! Several judges on the same examples, side by side: each judge's accuracy per task with a
//! bootstrap interval, and for each later judge against the first, per task, the exact
//! McNemar test (Holm-adjusted across the tasks) and a paired bootstrap interval of the
//! accuracy difference.
//!
//! Whether the runs are comparable at all (same dataset, same examples, same prompt) is the
//! caller's question: this module only sees judgements, and refuses examples that do not pair.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use halubench_core::{Judgement, task_heading, task_order};
use serde::Serialize;

use crate::ScoreError;
use crate::bootstrap::{
    BootstrapConfig, Interval, Intervals, bootstrap_accuracy, paired_bootstrap,
};
use crate::metrics::{Report, metrics};
use crate::significance::{McNemar, holm, mcnemar_judges};

/// One judge's judgements, under the name the comparison shows.
#[derive(Debug, Clone, Copy)]
pub struct Entrant<'a> {
    pub name: &'a str,
    pub judgements: &'a [Judgement],
}

/// One judge's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeScores {
    pub name: String,
    pub metrics: Report,
    pub intervals: Intervals,
}

/// One task of a paired comparison. Differences are `second − first`, fractions (−1–1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedTask {
    /// The dataset's `source_ds` spelling.
    pub task: String,
    pub mcnemar: McNemar,
    /// McNemar's p-value after Holm's adjustment over this pair's tasks.
    pub p_holm: f64,
    pub difference: Interval,
}

/// A later judge against the first one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedComparison {
    pub first: String,
    pub second: String,
    pub tasks: Vec<PairedTask>,
    /// Difference of the macro Overall, `second − first`.
    pub overall_macro: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub judges: Vec<JudgeScores>,
    pub pairs: Vec<PairedComparison>,
    pub bootstrap: BootstrapConfig,
}

/// Scores every entrant and compares each later one with the first. An error when two
/// entrants did not judge exactly the same examples, or for fewer than one entrant.
pub fn compare(
    entrants: &[Entrant<'_>],
    config: &BootstrapConfig,
) -> Result<Comparison, ScoreError> {
    let Some(first) = entrants.first() else {
        return Err(ScoreError::Empty);
    };
    let judges = entrants
        .iter()
        .map(|e| {
            Ok(JudgeScores {
                name: e.name.to_string(),
                metrics: metrics(e.judgements),
                intervals: bootstrap_accuracy(e.judgements, config)?,
            })
        })
        .collect::<Result<Vec<_>, ScoreError>>()?;
    let pairs = entrants[1..]
        .iter()
        .map(|second| paired(first, second, config))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Comparison {
        judges,
        pairs,
        bootstrap: *config,
    })
}

/// `second` against `first`, per task.
pub fn paired(
    first: &Entrant<'_>,
    second: &Entrant<'_>,
    config: &BootstrapConfig,
) -> Result<PairedComparison, ScoreError> {
    // `paired_bootstrap` gives first − second; the tables read better as second − first.
    // Negating every resample negates and swaps the percentile bounds (up to rounding).
    // `0.0 - x`, not `-x`: no difference prints as +0.0, not -0.0.
    let flip = |i: Interval| Interval {
        estimate: 0.0 - i.estimate,
        lower: 0.0 - i.upper,
        upper: 0.0 - i.lower,
    };
    let intervals = paired_bootstrap(first.judgements, second.judgements, config)?;
    let (first_tasks, second_tasks) = (by_task(first.judgements), by_task(second.judgements));
    let mut tests = Vec::new();
    for (task, firsts) in &first_tasks {
        let seconds = second_tasks.get(task).map_or(&[][..], Vec::as_slice);
        tests.push((task.to_string(), mcnemar_judges(firsts, seconds)?));
    }
    let p_values: Vec<f64> = tests.iter().map(|(_, m)| m.p_value).collect();
    let adjusted = holm(&p_values)?;
    let mut tasks: Vec<PairedTask> = tests
        .into_iter()
        .zip(adjusted)
        .map(|((task, mcnemar), p_holm)| {
            let difference = intervals
                .tasks
                .get(&task)
                .copied()
                .map(flip)
                .ok_or(ScoreError::Empty)?;
            Ok(PairedTask {
                task,
                mcnemar,
                p_holm,
                difference,
            })
        })
        .collect::<Result<_, ScoreError>>()?;
    tasks.sort_by(|a, b| task_order(&a.task).cmp(&task_order(&b.task)));
    Ok(PairedComparison {
        first: first.name.to_string(),
        second: second.name.to_string(),
        tasks,
        overall_macro: flip(intervals.overall_macro),
    })
}

fn by_task(judgements: &[Judgement]) -> BTreeMap<&str, Vec<Judgement>> {
    let mut tasks: BTreeMap<&str, Vec<Judgement>> = BTreeMap::new();
    for j in judgements {
        tasks.entry(j.task.as_str()).or_default().push(j.clone());
    }
    tasks
}

fn pct(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

fn pp(v: f64) -> String {
    format!("{:+.1}", v * 100.0)
}

/// A p-value to three decimals, those below 0.001 in scientific notation.
pub fn p_value(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

impl Comparison {
    /// Every task any judge has, in the paper's order.
    pub fn tasks(&self) -> Vec<String> {
        let mut tasks: Vec<String> = self
            .judges
            .iter()
            .flat_map(|j| j.metrics.tasks.keys().cloned())
            .collect();
        tasks.sort_by(|a, b| task_order(a).cmp(&task_order(b)));
        tasks.dedup();
        tasks
    }

    /// The accuracy table (judges as rows, tasks as columns, `value [lower, upper]`) and, per
    /// pair, the tests.
    pub fn to_markdown(&self) -> String {
        let tasks = self.tasks();
        let level = self.bootstrap.level * 100.0;
        let mut out = String::new();
        let _ = writeln!(out, "## Accuracy (%), {level:.0}% bootstrap intervals\n");
        let headings: Vec<&str> = tasks.iter().map(|t| task_heading(t)).collect();
        let _ = writeln!(out, "| judge | {} | Overall |", headings.join(" | "));
        let _ = writeln!(out, "|---|{}---:|", "---:|".repeat(tasks.len()));
        for judge in &self.judges {
            let cell = |i: Option<&Interval>| {
                i.map_or("-".to_string(), |i| {
                    format!("{} [{}, {}]", pct(i.estimate), pct(i.lower), pct(i.upper))
                })
            };
            let cells: Vec<String> = tasks
                .iter()
                .map(|t| cell(judge.intervals.tasks.get(t)))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                judge.name,
                cells.join(" | "),
                cell(Some(&judge.intervals.overall_macro))
            );
        }
        let _ = writeln!(
            out,
            "\nOverall is the unweighted mean of the tasks (the paper's rule). Intervals: stratified \
             bootstrap, {} resamples, seed {}.",
            self.bootstrap.resamples, self.bootstrap.seed
        );
        for pair in &self.pairs {
            let _ = writeln!(out, "\n## {} against {}\n", pair.second, pair.first);
            let _ = writeln!(
                out,
                "| task | difference (pp) | {level:.0}% interval | only {} right | only {} right | McNemar p | Holm p |",
                pair.first, pair.second
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
            for t in &pair.tasks {
                let _ = writeln!(
                    out,
                    "| {} | {} | [{}, {}] | {} | {} | {} | {} |",
                    task_heading(&t.task),
                    pp(t.difference.estimate),
                    pp(t.difference.lower),
                    pp(t.difference.upper),
                    t.mcnemar.first_only_correct,
                    t.mcnemar.second_only_correct,
                    p_value(t.mcnemar.p_value),
                    p_value(t.p_holm),
                );
            }
            let o = &pair.overall_macro;
            let _ = writeln!(
                out,
                "| Overall | {} | [{}, {}] | | | | |",
                pp(o.estimate),
                pp(o.lower),
                pp(o.upper)
            );
            let _ = writeln!(
                out,
                "\nDifferences are {} minus {}, in percentage points. McNemar: exact two-sided test \
                 on the examples one judge got right and the other wrong; Holm: adjusted over the \
                 {} tasks.",
                pair.second,
                pair.first,
                pair.tasks.len()
            );
        }
        out
    }

    pub fn to_json(&self) -> String {
        // Numbers and strings only: this cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}
