//! Several judges on the same examples, side by side: each judge's accuracy per task with a
//! bootstrap interval, and for each later judge against the first, per task, the exact
//! McNemar test (Holm-adjusted across the tasks) and a paired bootstrap interval of the
//! accuracy difference.
//!
//! Whether the runs are comparable at all (same dataset, same examples, same prompt) is the
//! caller's question: this module only sees judgements, and refuses examples that do not pair.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use halubench_core::{Judgement, Table, markdown_cell, task_heading, task_order};
use serde::Serialize;

use crate::ScoreError;
use crate::bootstrap::{
    AurocInterval, AurocIntervals, BootstrapConfig, Interval, Intervals, auroc_difference,
    bootstrap_accuracy, bootstrap_auroc, paired_bootstrap,
};
use crate::metrics::{Report, metrics};
use crate::pairs::{Pair, pair_up};
use crate::paper::PaperComparison;
use crate::rule::AccuracyRule;
use crate::significance::{McNemar, holm, mcnemar_pairs};

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
    /// AUROC of `p_fail` with bootstrap intervals, per task and over all rows; `None` (and
    /// absent from the JSON) when the judge gave no usable `p_fail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auroc: Option<AurocIntervals>,
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
    /// Paired bootstrap of the AUROC difference `second − first`, on the examples both judges
    /// gave a usable `p_fail`; `None` (and absent from the JSON) when either gave none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auroc_difference: Option<AurocIntervals>,
}

impl PairedComparison {
    /// Per task and Overall: difference in points, its interval, the discordant counts,
    /// McNemar's p and Holm's.
    pub fn table(&self) -> Table {
        let header = vec![
            "task".to_string(),
            "difference (pp)".to_string(),
            "interval".to_string(),
            format!("only {} right", self.first),
            format!("only {} right", self.second),
            "McNemar p".to_string(),
            "Holm p".to_string(),
        ];
        let interval = |i: &Interval| format!("[{}, {}]", pp(i.lower), pp(i.upper));
        let mut rows: Vec<Vec<String>> = self
            .tasks
            .iter()
            .map(|t| {
                vec![
                    task_heading(&t.task).to_string(),
                    pp(t.difference.estimate),
                    interval(&t.difference),
                    t.mcnemar.first_only_correct.to_string(),
                    t.mcnemar.second_only_correct.to_string(),
                    p_value(t.mcnemar.p_value),
                    p_value(t.p_holm),
                ]
            })
            .collect();
        let o = &self.overall_macro;
        let mut overall = vec!["Overall".to_string(), pp(o.estimate), interval(o)];
        overall.resize(7, String::new());
        rows.push(overall);
        Table { header, rows }
    }

    /// The AUROC difference per task (this pair's tasks) and over all rows, each cell
    /// `+0.012 [-0.010, +0.034]`; `None` unless both judges have `p_fail`.
    pub fn auroc_table(&self) -> Option<Table> {
        let difference = self.auroc_difference.as_ref()?;
        let tasks: Vec<&str> = self.tasks.iter().map(|t| t.task.as_str()).collect();
        let signed = |v: f64| format!("{v:+.3}");
        let cell = |i: Option<&AurocInterval>| {
            i.map_or("-".to_string(), |i| {
                format!(
                    "{} [{}, {}]",
                    signed(i.estimate),
                    signed(i.lower),
                    signed(i.upper)
                )
            })
        };
        Some(auroc_table(
            "AUROC",
            &tasks,
            vec![(format!("{} − {}", self.second, self.first), difference)],
            cell,
        ))
    }

    pub fn explanation(&self) -> String {
        format!(
            "Differences are {} minus {}, in percentage points, with paired bootstrap intervals. \
             McNemar: exact two-sided test on the examples one judge got right and the other \
             wrong; Holm: its p-values adjusted over the {} tasks of this pair.",
            self.second,
            self.first,
            self.tasks.len()
        )
    }
}

/// Rows of AUROC cells: a label column, one per task, then all rows.
fn auroc_table(
    corner: &str,
    tasks: &[&str],
    rows: Vec<(String, &AurocIntervals)>,
    cell: impl Fn(Option<&AurocInterval>) -> String,
) -> Table {
    let mut header = vec![corner.to_string()];
    header.extend(tasks.iter().map(|t| task_heading(t).to_string()));
    header.push("all rows".to_string());
    let rows = rows
        .into_iter()
        .map(|(name, intervals)| {
            let mut row = vec![name];
            row.extend(tasks.iter().map(|t| cell(intervals.tasks.get(*t))));
            row.push(cell(intervals.all_rows.as_ref()));
            row
        })
        .collect();
    Table { header, rows }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub judges: Vec<JudgeScores>,
    pub pairs: Vec<PairedComparison>,
    pub bootstrap: BootstrapConfig,
    /// The accuracy rule the judges' rows were read under ([`crate::rule::apply`], by the
    /// caller; `paper` unless it says otherwise), and the rows it dropped per task.
    pub rule: AccuracyRule,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped: BTreeMap<String, usize>,
    /// Judges set beside rows of the paper's Table 3, each under its own rule; empty (and
    /// absent from the JSON) when none is. Filled by the caller, who knows the rows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reproduction: Vec<PaperComparison>,
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
                auroc: bootstrap_auroc(e.judgements, config)?,
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
        rule: AccuracyRule::Paper,
        dropped: BTreeMap::new(),
        reproduction: Vec::new(),
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
    let pairs = pair_up(first.judgements, second.judgements)?;
    let intervals = paired_bootstrap(first.judgements, second.judgements, config)?;
    // `paired_bootstrap` has checked `config`.
    let auroc_difference = auroc_difference(&pairs, config);
    let mut by_task: BTreeMap<&str, Vec<&Pair<'_>>> = BTreeMap::new();
    for pair in &pairs {
        by_task.entry(pair.task).or_default().push(pair);
    }
    let tests: Vec<(String, McNemar)> = by_task
        .into_iter()
        .map(|(task, pairs)| (task.to_string(), mcnemar_pairs(pairs)))
        .collect();
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
        auroc_difference,
    })
}

/// A fraction as a percentage to one decimal: `0.8125` is `81.2`.
pub fn pct(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

/// A difference of fractions in signed percentage points: `-0.05` is `-5.0`.
pub fn pp(v: f64) -> String {
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

    /// Judges as rows, tasks then Overall (macro) and all rows (micro) as columns, each cell
    /// `value [lower, upper]` in percent.
    pub fn accuracy_table(&self) -> Table {
        let tasks = self.tasks();
        let mut header = vec!["judge".to_string()];
        header.extend(tasks.iter().map(|t| task_heading(t).to_string()));
        header.extend(["Overall".to_string(), "all rows".to_string()]);
        let cell = |i: Option<&Interval>| {
            i.map_or("-".to_string(), |i| {
                format!("{} [{}, {}]", pct(i.estimate), pct(i.lower), pct(i.upper))
            })
        };
        let rows = self
            .judges
            .iter()
            .map(|judge| {
                let mut row = vec![judge.name.clone()];
                row.extend(tasks.iter().map(|t| cell(judge.intervals.tasks.get(t))));
                row.push(cell(Some(&judge.intervals.overall_macro)));
                row.push(pct(judge.metrics.all_rows.accuracy));
                row
            })
            .collect();
        Table { header, rows }
    }

    /// Judges as rows, tasks then all rows as columns, each cell `0.812 [0.770, 0.851]`
    /// (`-` where there is none); `None` when no judge has `p_fail`.
    pub fn auroc_table(&self) -> Option<Table> {
        if self.judges.iter().all(|j| j.auroc.is_none()) {
            return None;
        }
        let tasks = self.tasks();
        let tasks: Vec<&str> = tasks.iter().map(String::as_str).collect();
        let none = AurocIntervals {
            tasks: BTreeMap::new(),
            all_rows: None,
        };
        let cell = |i: Option<&AurocInterval>| {
            i.map_or("-".to_string(), |i| {
                format!("{:.3} [{:.3}, {:.3}]", i.estimate, i.lower, i.upper)
            })
        };
        let rows = self
            .judges
            .iter()
            .map(|j| (j.name.clone(), j.auroc.as_ref().unwrap_or(&none)))
            .collect();
        Some(auroc_table("judge", &tasks, rows, cell))
    }

    /// The rule and each task's denominator, as a sentence: every judge is scored on the
    /// same rows, so one count per task.
    pub fn rule_statement(&self) -> String {
        let rows: BTreeMap<String, usize> = self
            .judges
            .first()
            .map(|j| {
                j.metrics
                    .tasks
                    .iter()
                    .map(|(t, m)| (t.clone(), m.n))
                    .collect()
            })
            .unwrap_or_default();
        crate::rule::statement(self.rule, &rows, &self.dropped)
    }

    /// The accuracy table and, per pair, the tests, with what they mean; the AUROC tables
    /// only when some judge has `p_fail`.
    pub fn to_markdown(&self) -> String {
        let level = self.bootstrap.level * 100.0;
        let mut out = String::new();
        let _ = writeln!(out, "## Accuracy (%), {level:.0}% bootstrap intervals\n");
        out.push_str(&self.accuracy_table().to_markdown());
        let _ = writeln!(
            out,
            "\nOverall is the unweighted mean of the tasks (the paper's rule); all rows weighs \
             every row alike. Intervals: stratified bootstrap, {} resamples, seed {}.",
            self.bootstrap.resamples, self.bootstrap.seed
        );
        let _ = writeln!(out, "\n{}", markdown_cell(&self.rule_statement()));
        if let Some(table) = self.auroc_table() {
            let _ = writeln!(
                out,
                "\n## AUROC (FAIL is positive), {level:.0}% bootstrap intervals\n"
            );
            out.push_str(&table.to_markdown());
            let _ = writeln!(
                out,
                "\nAUROC of `p_fail` on the rows where it is a probability; `-` where a judge \
                 gave none or the rows hold one class only. Intervals: percentile bootstrap \
                 stratified by task and label, {} resamples, seed {}; a resample lacking a \
                 class is skipped.",
                self.bootstrap.resamples, self.bootstrap.seed
            );
        }
        for pair in &self.pairs {
            let _ = writeln!(out, "\n## {} against {}\n", pair.second, pair.first);
            out.push_str(&pair.table().to_markdown());
            let _ = writeln!(out, "\n{}", pair.explanation());
            if let (Some(table), Some(difference)) = (pair.auroc_table(), &pair.auroc_difference) {
                let _ = writeln!(out);
                out.push_str(&table.to_markdown());
                let n = difference.all_rows.map_or(0, |i| i.n_scored);
                let _ = writeln!(
                    out,
                    "\nAUROC difference, {} minus {}, on the {n} examples both scored, with \
                     paired bootstrap intervals.",
                    pair.second, pair.first
                );
            }
        }
        out
    }

    pub fn to_json(&self) -> String {
        // Numbers and strings only: this cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ranking::{DEFAULT_ECE_BINS, threshold_free};
    use halubench_core::{Label, Verdict};

    /// Two tasks, 30 rows each, half FAIL; `p_fail` overlaps between the classes (AUROC
    /// neither 0.5 nor 1) unless `separated`.
    fn scored(separated: bool) -> Vec<Judgement> {
        let mut out = Vec::new();
        for task in ["DROP", "halueval"] {
            for i in 0..30 {
                let label = if i % 2 == 0 { Label::Pass } else { Label::Fail };
                let base = (i * 7 % 10) as f64 / 20.0; // 0 .. 0.45, repeating: ties
                let p = match (label, separated) {
                    (Label::Fail, true) => 0.55 + base,
                    (Label::Fail, false) => 0.2 + base,
                    (Label::Pass, _) => base,
                };
                let verdict = if p >= 0.5 {
                    Verdict::Fail
                } else {
                    Verdict::Pass
                };
                let mut j = Judgement::new(format!("{task}-{i}"), task, label, verdict);
                j.p_fail = Some(p);
                out.push(j);
            }
        }
        out
    }

    fn without_p(judgements: &[Judgement]) -> Vec<Judgement> {
        judgements
            .iter()
            .cloned()
            .map(|mut j| {
                j.p_fail = None;
                j
            })
            .collect()
    }

    fn auroc_of(judgements: &[Judgement], task: Option<&str>) -> f64 {
        let pairs: Vec<(Label, f64)> = judgements
            .iter()
            .filter(|j| task.is_none_or(|t| j.task == t))
            .filter_map(|j| Some((j.label, j.p_fail?)))
            .collect();
        threshold_free(&pairs, DEFAULT_ECE_BINS)
            .and_then(|t| t.auroc)
            .expect("both classes")
    }

    fn run(entrants: &[(&str, &[Judgement])], seed: u64) -> Comparison {
        let entrants: Vec<Entrant<'_>> = entrants
            .iter()
            .map(|&(name, judgements)| Entrant { name, judgements })
            .collect();
        compare(&entrants, &BootstrapConfig::with_seed(seed)).expect("comparable")
    }

    #[test]
    fn auroc_intervals_are_reproducible_and_estimate_threshold_free() {
        let rows = scored(false);
        let c = run(&[("a", &rows)], 7);
        assert_eq!(c, run(&[("a", &rows)], 7));
        assert_ne!(
            c.judges[0].auroc,
            run(&[("a", &rows)], 8).judges[0].auroc,
            "another seed, other intervals"
        );
        // Input order does not matter.
        let mut reversed = rows.clone();
        reversed.reverse();
        assert_eq!(
            c.judges[0].auroc,
            run(&[("a", &reversed)], 7).judges[0].auroc
        );

        let auroc = c.judges[0].auroc.as_ref().expect("p_fail given");
        let all = auroc.all_rows.expect("both classes");
        assert_eq!(all.estimate, auroc_of(&rows, None));
        assert_eq!(all.n_scored, 60);
        assert_eq!(all.resamples_used, 2000);
        assert!(all.estimate > 0.6 && all.estimate < 1.0, "{all:?}");
        for task in ["DROP", "halueval"] {
            let t = auroc.tasks[task];
            assert_eq!(t.estimate, auroc_of(&rows, Some(task)));
            assert_eq!(t.n_scored, 30);
        }
        for i in auroc.tasks.values().chain([&all]) {
            assert!(i.lower <= i.estimate && i.estimate <= i.upper, "{i:?}");
            assert!(
                i.upper > i.lower && i.lower >= 0.0 && i.upper <= 1.0,
                "{i:?}"
            );
        }
        // The all-rows interval is narrower than a task's: twice the rows.
        assert!(all.upper - all.lower < auroc.tasks["DROP"].upper - auroc.tasks["DROP"].lower);
    }

    #[test]
    fn identical_judges_differ_by_exactly_zero() {
        let rows = scored(false);
        let c = run(&[("a", &rows), ("b", &rows)], 3);
        let d = c.pairs[0]
            .auroc_difference
            .as_ref()
            .expect("both have p_fail");
        for i in d.tasks.values().chain(d.all_rows.as_ref()) {
            assert_eq!((i.estimate, i.lower, i.upper), (0.0, 0.0, 0.0));
        }
        assert_eq!(d.tasks.len(), 2);
        let md = c.to_markdown();
        assert!(
            md.contains("| b − a | +0.000 [+0.000, +0.000] | +0.000 [+0.000, +0.000] | +0.000 [+0.000, +0.000] |"),
            "{md}"
        );
        assert!(md.contains("on the 60 examples both scored"), "{md}");
    }

    #[test]
    fn paired_auroc_difference_is_second_minus_first() {
        let weak = scored(false);
        let strong = scored(true);
        let c = run(&[("weak", &weak), ("strong", &strong)], 5);
        let d = c.pairs[0]
            .auroc_difference
            .as_ref()
            .expect("both have p_fail");
        let all = d.all_rows.expect("both classes");
        assert_eq!(all.estimate, 1.0 - auroc_of(&weak, None));
        assert!(all.lower > 0.0 && all.contains(all.estimate), "{all:?}");
        let json = c.to_json();
        assert!(json.contains("\"auroc_difference\""), "{json}");
    }

    #[test]
    fn perfect_separation_is_one_with_a_zero_width_interval() {
        let rows = scored(true);
        let c = run(&[("perfect", &rows)], 1);
        let auroc = c.judges[0].auroc.as_ref().expect("p_fail given");
        for i in auroc.tasks.values().chain(auroc.all_rows.as_ref()) {
            assert_eq!((i.estimate, i.lower, i.upper), (1.0, 1.0, 1.0));
        }
        let md = c.to_markdown();
        assert!(
            md.contains("## AUROC (FAIL is positive), 95% bootstrap intervals\n\n| judge | HaluEval | DROP | all rows |\n|---|---:|---:|---:|\n| perfect | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] |\n"),
            "{md}"
        );
    }

    #[test]
    fn judges_without_p_fail_add_nothing() {
        let rows = without_p(&scored(false));
        let c = run(&[("a", &rows), ("b", &rows)], 2);
        assert!(c.judges.iter().all(|j| j.auroc.is_none()));
        assert!(c.pairs[0].auroc_difference.is_none());
        assert_eq!(c.auroc_table(), None);
        assert!(!c.to_markdown().contains("AUROC"));
        assert!(!c.to_json().contains("auroc"));

        // One judge with p_fail: its row, `-` for the other, no difference.
        let with = scored(false);
        let c = run(&[("with", &with), ("without", &rows)], 2);
        assert!(c.pairs[0].auroc_difference.is_none());
        let md = c.to_markdown();
        assert!(md.contains("| without | - | - | - |"), "{md}");
        assert_eq!(md.matches("AUROC").count(), 2, "{md}");
        let json = c.to_json();
        assert_eq!(json.matches("\"auroc\"").count(), 1, "{json}");
        assert!(json.contains("\"all_rows\""));
        assert!(!json.contains("auroc_difference"));
    }
}
