//! The nightly regression gate: a candidate run against a baseline run on the same examples.
//!
//! A task regresses only when its accuracy fell by more than the allowed drop AND the fall is
//! significant (exact McNemar, Holm-adjusted across the tasks). Either alone is not enough: a
//! large drop on 30 rows is often noise, and a significant drop of 0.3 points on 10,000 rows is
//! often not worth failing a job. The macro Overall regresses when it fell by more than the
//! allowed drop and its paired bootstrap interval lies wholly below zero.

use std::fmt::Write as _;

use halubench_core::{Table, markdown_cell, task_heading};
use serde::Serialize;

use crate::ScoreError;
use crate::bootstrap::{BootstrapConfig, Interval};
use crate::compare::{Entrant, p_value, paired, pct, pp};
use crate::metrics::{Report, metrics};

/// When a difference counts as a regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GateRule {
    /// Largest tolerated fall of a task's accuracy (and of Overall), in percentage points.
    pub max_drop_pp: f64,
    /// Significance level for the Holm-adjusted McNemar p-value.
    pub alpha: f64,
    pub bootstrap: BootstrapConfig,
}

impl Default for GateRule {
    fn default() -> Self {
        GateRule {
            max_drop_pp: 2.0,
            alpha: 0.05,
            bootstrap: BootstrapConfig::default(),
        }
    }
}

impl GateRule {
    fn validate(&self) -> Result<(), ScoreError> {
        if !(self.max_drop_pp.is_finite() && self.max_drop_pp >= 0.0) {
            return Err(ScoreError::InvalidTolerance(self.max_drop_pp));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(ScoreError::InvalidAlpha(self.alpha));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateTask {
    pub task: String,
    pub baseline: f64,
    pub candidate: f64,
    /// `candidate − baseline`, with its paired bootstrap interval (fractions).
    pub difference: Interval,
    pub p_holm: f64,
    pub regressed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateOutcome {
    pub rule: GateRule,
    pub baseline: String,
    pub candidate: String,
    pub tasks: Vec<GateTask>,
    pub overall_baseline: f64,
    pub overall_candidate: f64,
    pub overall_difference: Interval,
    pub overall_regressed: bool,
}

impl GateOutcome {
    pub fn holds(&self) -> bool {
        !self.overall_regressed && self.tasks.iter().all(|t| !t.regressed)
    }

    /// Per task and Overall: both accuracies, the difference with its interval, Holm's p and
    /// whether it regressed.
    pub fn table(&self) -> Table {
        let mut table = Table::new([
            "task",
            "baseline (%)",
            "candidate (%)",
            "difference (pp)",
            "interval",
            "Holm p",
            "",
        ]);
        let interval = |i: &Interval| format!("[{}, {}]", pp(i.lower), pp(i.upper));
        let mark = |regressed: bool| if regressed { "REGRESSED" } else { "" }.to_string();
        for t in &self.tasks {
            table.push([
                task_heading(&t.task).to_string(),
                pct(t.baseline),
                pct(t.candidate),
                pp(t.difference.estimate),
                interval(&t.difference),
                p_value(t.p_holm),
                mark(t.regressed),
            ]);
        }
        let o = &self.overall_difference;
        table.push([
            "Overall".to_string(),
            pct(self.overall_baseline),
            pct(self.overall_candidate),
            pp(o.estimate),
            interval(o),
            String::new(),
            mark(self.overall_regressed),
        ]);
        table
    }

    /// A short report for a CI job's log or step summary: the verdict first, then the table.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let regressed: Vec<String> = self
            .tasks
            .iter()
            .filter(|t| t.regressed)
            .map(|t| {
                format!(
                    "{} ({} pp, Holm p = {})",
                    task_heading(&t.task),
                    pp(t.difference.estimate),
                    p_value(t.p_holm)
                )
            })
            .chain(
                self.overall_regressed
                    .then(|| format!("Overall ({} pp)", pp(self.overall_difference.estimate))),
            )
            .collect();
        if regressed.is_empty() {
            let _ = writeln!(
                out,
                "## Gate holds: no significant drop above {} pp\n",
                self.rule.max_drop_pp
            );
        } else {
            let _ = writeln!(
                out,
                "## REGRESSION: {}\n",
                markdown_cell(&regressed.join(", "))
            );
        }
        let _ = writeln!(
            out,
            "Candidate {} against baseline {}.\n",
            markdown_cell(&self.candidate),
            markdown_cell(&self.baseline)
        );
        out.push_str(&self.table().to_markdown());
        let _ = writeln!(
            out,
            "\nA task regresses when it falls by more than {} pp and McNemar's exact test, \
             Holm-adjusted over the tasks, gives p ≤ {}. Overall regresses when it falls by more \
             than {} pp and its {:.0}% paired bootstrap interval is below zero.",
            self.rule.max_drop_pp,
            self.rule.alpha,
            self.rule.max_drop_pp,
            self.rule.bootstrap.level * 100.0
        );
        out
    }
}

/// Judges `candidate` against `baseline`. An error when the runs did not judge the same
/// examples, or for a rule out of range.
pub fn gate(
    baseline: &Entrant<'_>,
    candidate: &Entrant<'_>,
    rule: &GateRule,
) -> Result<GateOutcome, ScoreError> {
    rule.validate()?;
    let pair = paired(baseline, candidate, &rule.bootstrap)?;
    let limit = rule.max_drop_pp / 100.0;
    // A drop exactly at the limit is allowed; the slack absorbs float noise in the difference.
    let too_far = |difference: f64| -difference > limit + 1e-12;
    let (before, after) = (metrics(baseline.judgements), metrics(candidate.judgements));
    // Both runs have every paired task.
    let accuracy = |report: &Report, task: &str| report.tasks.get(task).map_or(0.0, |m| m.accuracy);
    let tasks: Vec<GateTask> = pair
        .tasks
        .iter()
        .map(|t| GateTask {
            task: t.task.clone(),
            baseline: accuracy(&before, &t.task),
            candidate: accuracy(&after, &t.task),
            difference: t.difference,
            p_holm: t.p_holm,
            regressed: too_far(t.difference.estimate) && t.p_holm <= rule.alpha,
        })
        .collect();
    let overall = |pick: fn(&GateTask) -> f64| {
        tasks.iter().map(pick).sum::<f64>() / tasks.len().max(1) as f64
    };
    let o = pair.overall_macro;
    Ok(GateOutcome {
        rule: *rule,
        baseline: baseline.name.to_string(),
        candidate: candidate.name.to_string(),
        overall_baseline: overall(|t| t.baseline),
        overall_candidate: overall(|t| t.candidate),
        overall_difference: o,
        overall_regressed: too_far(o.estimate) && o.upper < 0.0,
        tasks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::{Judgement, Label, Verdict};

    /// `n` rows per task over tasks "a" and "b", alternating labels, all judged right.
    fn perfect(n: usize) -> Vec<Judgement> {
        ["a", "b"]
            .iter()
            .flat_map(|task| {
                (0..n).map(move |i| {
                    let label = if i % 2 == 0 { Label::Pass } else { Label::Fail };
                    Judgement::new(format!("{task}-{i}"), *task, label, Verdict::from(label))
                })
            })
            .collect()
    }

    /// Makes the first `k` rows of `task` wrong.
    fn spoil(judgements: &mut [Judgement], task: &str, k: usize) {
        for j in judgements.iter_mut().filter(|j| j.task == task).take(k) {
            j.verdict = Verdict::Invalid;
        }
    }

    fn run_gate(baseline: &[Judgement], candidate: &[Judgement]) -> GateOutcome {
        let rule = GateRule {
            bootstrap: BootstrapConfig {
                resamples: 200,
                ..BootstrapConfig::default()
            },
            ..GateRule::default()
        };
        gate(
            &Entrant {
                name: "nightly-1",
                judgements: baseline,
            },
            &Entrant {
                name: "nightly-2",
                judgements: candidate,
            },
            &rule,
        )
        .expect("gate")
    }

    #[test]
    fn an_unchanged_run_holds() {
        let rows = perfect(200);
        let outcome = run_gate(&rows, &rows);
        assert!(outcome.holds(), "{}", outcome.to_markdown());
        assert!(outcome.to_markdown().starts_with("## Gate holds"));
    }

    #[test]
    fn a_large_significant_drop_in_one_task_is_a_regression() {
        let baseline = perfect(200);
        let mut candidate = baseline.clone();
        spoil(&mut candidate, "b", 20); // 10 points, McNemar p = 2^-19
        let outcome = run_gate(&baseline, &candidate);
        assert!(!outcome.holds());
        let b = outcome.tasks.iter().find(|t| t.task == "b").expect("b");
        assert!(b.regressed && b.p_holm < 1e-4, "{b:?}");
        assert!((b.difference.estimate + 0.10).abs() < 1e-12);
        assert!(
            !outcome
                .tasks
                .iter()
                .find(|t| t.task == "a")
                .expect("a")
                .regressed
        );
        assert!(
            outcome
                .to_markdown()
                .starts_with("## REGRESSION: b (-10.0 pp")
        );
    }

    #[test]
    fn a_drop_that_is_small_or_not_significant_holds() {
        let baseline = perfect(200);
        // 1.5 points: significant? 3 discordant pairs, p = 0.25, and below the 2 pp limit.
        let mut small = baseline.clone();
        spoil(&mut small, "a", 3);
        assert!(run_gate(&baseline, &small).holds());
        // 15 points on 20 rows: large but 3 discordant pairs, p = 0.25.
        let few = perfect(20);
        let mut dropped = few.clone();
        spoil(&mut dropped, "a", 3);
        let outcome = run_gate(&few, &dropped);
        let a = outcome.tasks.iter().find(|t| t.task == "a").expect("a");
        assert!(a.difference.estimate < -0.14 && !a.regressed, "{a:?}");
    }

    #[test]
    fn a_significant_drop_below_the_limit_holds() {
        // 0.4 points of 10,000 rows: 40 discordant pairs, p = 2^-39, but under 2 points.
        let baseline = perfect(10_000);
        let mut candidate = baseline.clone();
        spoil(&mut candidate, "a", 40);
        let outcome = run_gate(&baseline, &candidate);
        let a = outcome.tasks.iter().find(|t| t.task == "a").expect("a");
        assert!(a.p_holm < 1e-9 && !a.regressed, "{a:?}");
        assert!(outcome.holds());
    }

    #[test]
    fn different_examples_are_an_error_and_bad_rules_are_refused() {
        let baseline = perfect(10);
        let candidate = perfect(11);
        let entrant = |judgements| Entrant {
            name: "x",
            judgements,
        };
        assert!(matches!(
            gate(
                &entrant(&baseline),
                &entrant(&candidate),
                &GateRule::default()
            ),
            Err(ScoreError::UnpairedId { .. })
        ));
        let bad = GateRule {
            alpha: 1.5,
            ..GateRule::default()
        };
        assert!(matches!(
            gate(&entrant(&baseline), &entrant(&baseline), &bad),
            Err(ScoreError::InvalidAlpha(_))
        ));
    }
}
