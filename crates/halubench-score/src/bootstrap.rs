//! Confidence intervals by stratified bootstrap (percentile method).
//!
//! Each resample draws, with replacement, as many examples from every (task, label) stratum
//! as the stratum holds. Keeping the strata fixed keeps what the benchmark fixes: the number
//! of rows per task and the PASS/FAIL balance within each task (HaluBench's RAGTruth is
//! 740/160), so the intervals reflect the judge's variability, not a reshuffled dataset.
//!
//! # Reproducibility
//!
//! A seed fully determines the intervals. The generator (xoshiro256** seeded by SplitMix64)
//! is written in this crate and pinned by tests, random numbers are consumed in a fixed order
//! (resample by resample; tasks in name order; PASS before FAIL; examples sorted by id), and
//! the input's order does not matter, since a journal's order depends on which calls finished
//! first.

use std::collections::BTreeMap;

use halubench_core::{Judgement, Label};
use serde::Serialize;

use crate::ScoreError;
use crate::pairs::{Pair, pair_up};
use crate::ranking::{DEFAULT_ECE_BINS, threshold_free};
use crate::rng::Xoshiro256StarStar;

/// How to bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapConfig {
    /// Number of resamples, B. 2,000 keeps the Monte Carlo error of a 95% percentile bound to
    /// about a tenth of a percentage point for accuracies near 80% on HaluBench-sized tasks.
    pub resamples: usize,
    pub seed: u64,
    /// Coverage of the interval, in (0, 1).
    pub level: f64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            resamples: 2000,
            seed: 0,
            level: 0.95,
        }
    }
}

impl BootstrapConfig {
    /// The defaults (2,000 resamples, 95%) with another seed.
    pub fn with_seed(seed: u64) -> Self {
        BootstrapConfig {
            seed,
            ..BootstrapConfig::default()
        }
    }

    fn validate(&self) -> Result<(), ScoreError> {
        if self.resamples == 0 {
            return Err(ScoreError::BootstrapConfig(
                "resamples must be at least 1".to_string(),
            ));
        }
        // Written so that NaN fails too.
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(ScoreError::BootstrapConfig(format!(
                "level must lie strictly between 0 and 1, not {}",
                self.level
            )));
        }
        Ok(())
    }
}

/// A point estimate and its bootstrap interval. Fractions (0–1) for accuracies, differences
/// of fractions (−1–1) for paired comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// The statistic on the data as given (not the mean of the resamples).
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

impl AurocInterval {
    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }
}

impl Interval {
    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }

    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }
}

/// Intervals for each task and for the macro Overall (the unweighted mean of the tasks, the
/// paper's Overall), with the settings that produced them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Intervals {
    pub config: BootstrapConfig,
    /// Keyed by the dataset's `source_ds` spelling.
    pub tasks: BTreeMap<String, Interval>,
    pub overall_macro: Interval,
}

/// One task's (id, value) rows by label, while the strata are being built.
type ByLabel<'a> = BTreeMap<Label, Vec<(&'a str, i32)>>;

/// Per-example values grouped into strata: for each task (in name order), its non-empty
/// label strata (PASS, then FAIL), each a list of values in id order. The statistic of a task
/// is the mean of its values: 1/0 (correct or not) gives accuracy, and +1/0/−1 (first judge
/// right and second wrong, both alike, the reverse) gives a difference of accuracies.
#[derive(Debug)]
struct Strata {
    tasks: Vec<(String, Vec<Vec<i32>>)>,
}

impl Strata {
    /// `rows` are (id, task, label, value); ids only fix the order.
    fn new<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, Label, i32)>) -> Strata {
        let mut grouped: BTreeMap<&'a str, ByLabel<'a>> = BTreeMap::new();
        for (id, task, label, value) in rows {
            grouped
                .entry(task)
                .or_default()
                .entry(label)
                .or_default()
                .push((id, value));
        }
        let tasks = grouped
            .into_iter()
            .map(|(task, by_label)| {
                let strata = by_label
                    .into_values()
                    .map(|mut stratum| {
                        // By id, then value, so that repeated ids still sort the same way.
                        stratum.sort_unstable();
                        stratum.into_iter().map(|(_, value)| value).collect()
                    })
                    .collect();
                (task.to_string(), strata)
            })
            .collect();
        Strata { tasks }
    }

    /// The per-task means of the data as given, in task order.
    fn task_means(&self) -> Vec<f64> {
        self.tasks
            .iter()
            .map(|(_, strata)| {
                let sum: i64 = strata.iter().flatten().map(|&v| i64::from(v)).sum();
                let n: usize = strata.iter().map(Vec::len).sum();
                sum as f64 / n as f64
            })
            .collect()
    }

    /// Per-task means of one stratified resample.
    fn resample_means(&self, rng: &mut Xoshiro256StarStar, out: &mut Vec<f64>) {
        out.clear();
        for (_, strata) in &self.tasks {
            let mut sum: i64 = 0;
            let mut n = 0usize;
            for stratum in strata {
                let len = stratum.len() as u64;
                for _ in 0..stratum.len() {
                    // `below(len)` is < len, so the index is in bounds.
                    sum += i64::from(stratum[rng.below(len) as usize]);
                }
                n += stratum.len();
            }
            out.push(sum as f64 / n as f64);
        }
    }

    fn bootstrap(&self, config: &BootstrapConfig) -> Result<Intervals, ScoreError> {
        config.validate()?;
        if self.tasks.is_empty() {
            return Err(ScoreError::Empty);
        }
        let estimates = self.task_means();
        let mut rng = Xoshiro256StarStar::seed_from_u64(config.seed);
        let mut task_samples = vec![Vec::with_capacity(config.resamples); self.tasks.len()];
        let mut macro_samples = Vec::with_capacity(config.resamples);
        let mut means = Vec::with_capacity(self.tasks.len());
        for _ in 0..config.resamples {
            self.resample_means(&mut rng, &mut means);
            for (samples, &mean) in task_samples.iter_mut().zip(&means) {
                samples.push(mean);
            }
            macro_samples.push(mean_of(&means));
        }

        let tail = (1.0 - config.level) / 2.0;
        let interval = |estimate: f64, mut samples: Vec<f64>| {
            samples.sort_unstable_by(f64::total_cmp);
            Interval {
                estimate,
                lower: percentile(&samples, tail),
                upper: percentile(&samples, 1.0 - tail),
            }
        };
        let overall_macro = interval(mean_of(&estimates), macro_samples);
        let tasks = self
            .tasks
            .iter()
            .zip(estimates)
            .zip(task_samples)
            .map(|(((task, _), estimate), samples)| (task.clone(), interval(estimate, samples)))
            .collect();
        Ok(Intervals {
            config: *config,
            tasks,
            overall_macro,
        })
    }
}

fn mean_of(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The `q` quantile of sorted, non-empty `sorted`, interpolating linearly between order
/// statistics (numpy's default, Hyndman and Fan's type 7), so that a bound does not jump by a
/// whole resample as `q` or B change.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

/// Intervals for the accuracy of each task and for the macro Overall of one judge. INVALID
/// counts as wrong. An error for empty input or invalid settings.
pub fn bootstrap_accuracy<'a>(
    judgements: impl IntoIterator<Item = &'a Judgement>,
    config: &BootstrapConfig,
) -> Result<Intervals, ScoreError> {
    let rows = judgements.into_iter().map(|j| {
        (
            j.id.as_str(),
            j.task.as_str(),
            j.label,
            i32::from(j.is_correct()),
        )
    });
    Strata::new(rows).bootstrap(config)
}

/// Paired bootstrap of the accuracy difference `first − second` on the same examples: each
/// resample draws example ids (stratified by task and label) and scores both judges on the
/// same draw, so that the variation the two judges share (hard examples) cancels out.
/// `estimate` is the observed difference: per task, and of the macro Overall.
///
/// Both runs must have judged exactly the same examples (same ids, tasks and labels); an
/// error otherwise, and for empty input or invalid settings.
pub fn paired_bootstrap(
    first: &[Judgement],
    second: &[Judgement],
    config: &BootstrapConfig,
) -> Result<Intervals, ScoreError> {
    let pairs = pair_up(first, second)?;
    let rows = pairs.iter().map(|p| {
        (
            p.id,
            p.task,
            p.label,
            i32::from(p.first_correct) - i32::from(p.second_correct),
        )
    });
    Strata::new(rows).bootstrap(config)
}

/// An AUROC of `p_fail` (FAIL the positive class), or a difference of two, with its
/// percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AurocInterval {
    /// On the rows as given: [`threshold_free`]'s AUROC (for a difference, the difference of
    /// two of them).
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    /// Rows scored: those whose `p_fail` is a probability (for a difference, by both judges).
    pub n_scored: usize,
    /// Resamples the interval is made of: the configured number less those that lacked a
    /// class (none, in practice: resampling within labels keeps both).
    pub resamples_used: usize,
}

/// AUROC intervals per task and over all rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AurocIntervals {
    /// Keyed by the dataset's `source_ds` spelling; only the tasks whose scored rows hold both
    /// classes.
    pub tasks: BTreeMap<String, AurocInterval>,
    /// All scored rows pooled; `None` unless they hold both classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_rows: Option<AurocInterval>,
}

/// `p` when it is a probability: the rows [`threshold_free`] scores.
fn probability(p: Option<f64>) -> Option<f64> {
    p.filter(|p| crate::ranking::is_probability(*p))
}

/// One example with a usable `p_fail` from each judge (one or two): id, task, label, scores.
type ScoredRow<'a> = (&'a str, &'a str, Label, Vec<f64>);

/// Scored rows ready to resample: strata by task and label, and for each judge the rows of
/// each task (then of all tasks) in ascending order of its score.
#[derive(Debug)]
struct AurocData {
    tasks: Vec<String>,
    labels: Vec<Label>,
    /// `scores[judge][row]`.
    scores: Vec<Vec<f64>>,
    /// Row indices per (task, label), tasks in name order, PASS then FAIL, rows by id.
    strata: Vec<Vec<usize>>,
    /// `groups[g]`: the rows of task `g`, the last group being all rows.
    groups: Vec<Vec<usize>>,
    /// `orders[judge][g]`: `groups[g]` sorted by that judge's score, lowest first.
    orders: Vec<Vec<Vec<usize>>>,
}

impl AurocData {
    /// `None` when no row is given.
    fn new(rows: Vec<ScoredRow<'_>>, judges: usize) -> Option<AurocData> {
        if rows.is_empty() {
            return None;
        }
        let mut by_stratum: BTreeMap<(&str, Label), Vec<usize>> = BTreeMap::new();
        for (index, (_, task, label, _)) in rows.iter().enumerate() {
            by_stratum.entry((task, *label)).or_default().push(index);
        }
        let by_id = |a: &usize, b: &usize| {
            let (ra, rb) = (&rows[*a], &rows[*b]);
            ra.0.cmp(rb.0).then_with(|| {
                ra.3.iter()
                    .zip(&rb.3)
                    .map(|(x, y)| x.total_cmp(y))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        };
        let mut tasks: Vec<String> = Vec::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut strata = Vec::with_capacity(by_stratum.len());
        for ((task, _), mut stratum) in by_stratum {
            stratum.sort_by(by_id);
            if tasks.last().map(String::as_str) != Some(task) {
                tasks.push(task.to_string());
                groups.push(Vec::new());
            }
            if let Some(group) = groups.last_mut() {
                group.extend_from_slice(&stratum);
            }
            strata.push(stratum);
        }
        groups.push((0..rows.len()).collect());
        let scores: Vec<Vec<f64>> = (0..judges)
            .map(|k| rows.iter().map(|row| row.3[k]).collect())
            .collect();
        let orders = scores
            .iter()
            .map(|score| {
                groups
                    .iter()
                    .map(|group| {
                        let mut order = group.clone();
                        order.sort_by(|a, b| score[*a].total_cmp(&score[*b]));
                        order
                    })
                    .collect()
            })
            .collect();
        Some(AurocData {
            tasks,
            labels: rows.iter().map(|row| row.2).collect(),
            scores,
            strata,
            groups,
            orders,
        })
    }

    /// Per group: the judges' AUROCs combined (one judge: its AUROC; two: second − first).
    fn combine(values: &[Option<f64>]) -> Option<f64> {
        match values {
            [only] => *only,
            [first, second] => first.zip(*second).map(|(first, second)| second - first),
            _ => None,
        }
    }

    fn bootstrap(&self, config: &BootstrapConfig) -> AurocIntervals {
        let judges = self.scores.len();
        let estimates: Vec<Option<f64>> = self
            .groups
            .iter()
            .map(|group| {
                let per_judge: Vec<Option<f64>> = self
                    .scores
                    .iter()
                    .map(|score| {
                        let pairs: Vec<(Label, f64)> =
                            group.iter().map(|&r| (self.labels[r], score[r])).collect();
                        threshold_free(&pairs, DEFAULT_ECE_BINS).and_then(|t| t.auroc)
                    })
                    .collect();
                Self::combine(&per_judge)
            })
            .collect();

        let mut rng = Xoshiro256StarStar::seed_from_u64(config.seed);
        let mut samples = vec![Vec::with_capacity(config.resamples); self.groups.len()];
        let mut counts = vec![0u64; self.labels.len()];
        let mut per_judge = Vec::with_capacity(judges);
        for _ in 0..config.resamples {
            counts.fill(0);
            for stratum in &self.strata {
                let len = stratum.len() as u64;
                for _ in 0..stratum.len() {
                    // `below(len)` is < len, so the index is in bounds.
                    counts[stratum[rng.below(len) as usize]] += 1;
                }
            }
            for (g, group_samples) in samples.iter_mut().enumerate() {
                if estimates[g].is_none() {
                    continue;
                }
                per_judge.clear();
                per_judge.extend((0..judges).map(|k| {
                    weighted_auroc(&self.orders[k][g], &self.scores[k], &self.labels, &counts)
                }));
                // A resample lacking a class has no AUROC, and is skipped.
                if let Some(value) = Self::combine(&per_judge) {
                    group_samples.push(value);
                }
            }
        }

        let tail = (1.0 - config.level) / 2.0;
        let mut intervals = estimates
            .into_iter()
            .zip(samples)
            .zip(&self.groups)
            .map(|((estimate, mut samples), group)| {
                let estimate = estimate?;
                if samples.is_empty() {
                    return None;
                }
                samples.sort_unstable_by(f64::total_cmp);
                Some(AurocInterval {
                    estimate,
                    lower: percentile(&samples, tail),
                    upper: percentile(&samples, 1.0 - tail),
                    n_scored: group.len(),
                    resamples_used: samples.len(),
                })
            })
            .collect::<Vec<_>>();
        let all_rows = intervals.pop().flatten();
        let tasks = self
            .tasks
            .iter()
            .zip(intervals)
            .filter_map(|(task, interval)| Some((task.clone(), interval?)))
            .collect();
        AurocIntervals { tasks, all_rows }
    }
}

/// [`threshold_free`]'s AUROC (Mann–Whitney, ties counting one half) of the rows in `order`
/// (ascending by `score`), row `r` counted `weight[r]` times: a resample without copying it.
/// Pairs won are counted in integers, doubled so that ties stay whole, and divided once.
/// `None` when a class has no weight.
fn weighted_auroc(order: &[usize], score: &[f64], labels: &[Label], weight: &[u64]) -> Option<f64> {
    let (mut pass_below, mut n_fail, mut wins_doubled) = (0u64, 0u64, 0u128);
    let mut i = 0;
    while i < order.len() {
        let tied = score[order[i]];
        let (mut fail, mut pass) = (0u64, 0u64);
        while let Some(&r) = order.get(i).filter(|&&r| score[r] == tied) {
            match labels[r] {
                Label::Fail => fail += weight[r],
                Label::Pass => pass += weight[r],
            }
            i += 1;
        }
        wins_doubled += u128::from(fail) * u128::from(2 * pass_below + pass);
        pass_below += pass;
        n_fail += fail;
    }
    let n_pass = pass_below;
    (n_fail > 0 && n_pass > 0)
        .then(|| wins_doubled as f64 / (2 * u128::from(n_fail) * u128::from(n_pass)) as f64)
}

/// Percentile bootstrap intervals of one judge's AUROC of `p_fail`, per task and over all
/// rows, from the judgements whose `p_fail` is a probability. Resampling is stratified by task
/// and label, as in [`bootstrap_accuracy`], with the same seed handling; every task and the
/// pooled rows are scored on the same draw. `Ok(None)` when no judgement has a usable
/// `p_fail`; an error for invalid settings.
pub fn bootstrap_auroc<'a>(
    judgements: impl IntoIterator<Item = &'a Judgement>,
    config: &BootstrapConfig,
) -> Result<Option<AurocIntervals>, ScoreError> {
    config.validate()?;
    let rows = judgements
        .into_iter()
        .filter_map(|j| {
            let p = probability(j.p_fail)?;
            Some((j.id.as_str(), j.task.as_str(), j.label, vec![p]))
        })
        .collect();
    Ok(AurocData::new(rows, 1).map(|data| data.bootstrap(config)))
}

/// Paired bootstrap of the AUROC difference `second − first` (note: the reverse of
/// [`paired_bootstrap`]'s order) on the examples both judges gave a usable `p_fail`: each
/// resample draws examples (stratified by task and label) and scores both judges on that same
/// draw. Per task and over all rows.
///
/// Both runs must have judged exactly the same examples, as for [`paired_bootstrap`].
/// `Ok(None)` when either judge has no usable `p_fail`, or no example has both.
pub fn paired_bootstrap_auroc(
    first: &[Judgement],
    second: &[Judgement],
    config: &BootstrapConfig,
) -> Result<Option<AurocIntervals>, ScoreError> {
    config.validate()?;
    let pairs = pair_up(first, second)?;
    Ok(auroc_difference(&pairs, config))
}

/// [`paired_bootstrap_auroc`] on examples already paired; `config` already checked.
pub(crate) fn auroc_difference(
    pairs: &[Pair<'_>],
    config: &BootstrapConfig,
) -> Option<AurocIntervals> {
    let rows = pairs
        .iter()
        .filter_map(|p| {
            let first = probability(p.first_p_fail)?;
            let second = probability(p.second_p_fail)?;
            Some((p.id, p.task, p.label, vec![first, second]))
        })
        .collect();
    AurocData::new(rows, 2).map(|data| data.bootstrap(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::Verdict;

    fn judgement(id: usize, task: &str, label: Label, verdict: Verdict) -> Judgement {
        Judgement::new(format!("{task}-{id}"), task, label, verdict)
    }

    /// `copies` × 40 rows over two tasks; task "a" is right 30 of 40 times, task "b" 20 of 40.
    fn data(copies: usize) -> Vec<Judgement> {
        let mut out = Vec::new();
        for copy in 0..copies {
            for i in 0..40 {
                let id = copy * 40 + i;
                let label = if i % 2 == 0 { Label::Pass } else { Label::Fail };
                let right = Verdict::from(label);
                let wrong = if i % 4 == 1 {
                    Verdict::Invalid
                } else {
                    Verdict::from(if label == Label::Pass {
                        Label::Fail
                    } else {
                        Label::Pass
                    })
                };
                out.push(judgement(
                    id,
                    "a",
                    label,
                    if i < 30 { right } else { wrong },
                ));
                out.push(judgement(
                    id,
                    "b",
                    label,
                    if i < 20 { right } else { wrong },
                ));
            }
        }
        out
    }

    #[test]
    fn same_seed_same_intervals_and_input_order_does_not_matter() {
        let rows = data(1);
        let config = BootstrapConfig::with_seed(11);
        let once = bootstrap_accuracy(&rows, &config).expect("bootstrap");
        let again = bootstrap_accuracy(&rows, &config).expect("bootstrap");
        assert_eq!(once, again);

        let mut reversed = rows.clone();
        reversed.reverse();
        assert_eq!(
            once,
            bootstrap_accuracy(&reversed, &config).expect("bootstrap")
        );
    }

    #[test]
    fn another_seed_gives_other_intervals() {
        let rows = data(1);
        let a = bootstrap_accuracy(&rows, &BootstrapConfig::with_seed(1)).expect("bootstrap");
        let b = bootstrap_accuracy(&rows, &BootstrapConfig::with_seed(2)).expect("bootstrap");
        assert_ne!(a.tasks, b.tasks);
        assert_ne!(a.overall_macro, b.overall_macro);
    }

    #[test]
    fn intervals_contain_the_estimate_and_shrink_with_more_data() {
        let config = BootstrapConfig::with_seed(3);
        let small = bootstrap_accuracy(&data(1), &config).expect("bootstrap");
        let large = bootstrap_accuracy(&data(4), &config).expect("bootstrap");
        for intervals in [&small, &large] {
            assert_eq!(intervals.tasks["a"].estimate, 0.75);
            assert_eq!(intervals.tasks["b"].estimate, 0.5);
            assert_eq!(intervals.overall_macro.estimate, 0.625);
            for interval in intervals.tasks.values().chain([&intervals.overall_macro]) {
                assert!(interval.contains(interval.estimate), "{interval:?}");
                assert!(interval.width() > 0.0);
            }
        }
        // Four times the rows: about half the width (standard error scales as 1/sqrt(n)).
        let ratio = large.overall_macro.width() / small.overall_macro.width();
        assert!((0.35..0.65).contains(&ratio), "width ratio {ratio}");
        assert!(large.tasks["a"].width() < small.tasks["a"].width());
    }

    #[test]
    fn a_constant_stratum_has_a_zero_width_interval() {
        // Every row right: every resample is right too.
        let rows: Vec<Judgement> = (0..10)
            .map(|i| judgement(i, "t", Label::Pass, Verdict::Pass))
            .collect();
        let intervals = bootstrap_accuracy(&rows, &BootstrapConfig::default()).expect("bootstrap");
        let t = intervals.tasks["t"];
        assert_eq!((t.estimate, t.lower, t.upper), (1.0, 1.0, 1.0));
    }

    #[test]
    fn paired_difference_of_a_judge_with_itself_is_exactly_zero() {
        let rows = data(1);
        let d = paired_bootstrap(&rows, &rows, &BootstrapConfig::default()).expect("paired");
        assert_eq!(
            (
                d.overall_macro.estimate,
                d.overall_macro.lower,
                d.overall_macro.upper
            ),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn paired_difference_is_first_minus_second() {
        let first = data(2);
        // The same examples, but the second judge gets every row of task "a" right.
        let mut second = first.clone();
        for j in second.iter_mut().filter(|j| j.task == "a") {
            j.verdict = Verdict::from(j.label);
        }
        let d = paired_bootstrap(&first, &second, &BootstrapConfig::with_seed(5)).expect("paired");
        assert_eq!(d.tasks["a"].estimate, -0.25);
        assert_eq!(d.tasks["b"].estimate, 0.0);
        assert_eq!(d.overall_macro.estimate, -0.125);
        assert!(d.tasks["a"].upper < 0.0, "{:?}", d.tasks["a"]);
        assert!(d.overall_macro.contains(-0.125));
    }

    #[test]
    fn bad_input_is_an_error() {
        let config = BootstrapConfig::default();
        assert_eq!(bootstrap_accuracy(&[], &config), Err(ScoreError::Empty));
        let rows = data(1);
        for bad in [
            BootstrapConfig {
                resamples: 0,
                ..config
            },
            BootstrapConfig {
                level: 1.0,
                ..config
            },
            BootstrapConfig {
                level: f64::NAN,
                ..config
            },
        ] {
            assert!(matches!(
                bootstrap_accuracy(&rows, &bad),
                Err(ScoreError::BootstrapConfig(_))
            ));
        }
    }

    #[test]
    fn weighted_auroc_is_threshold_free_auroc_bit_for_bit() {
        use crate::ranking::{DEFAULT_ECE_BINS, threshold_free};
        let labels: Vec<Label> = (0..23)
            .map(|i| if i % 3 == 0 { Label::Fail } else { Label::Pass })
            .collect();
        let score: Vec<f64> = (0..23).map(|i| f64::from(i * 5 % 7) / 7.0).collect();
        let mut order: Vec<usize> = (0..23).collect();
        order.sort_by(|a, b| score[*a].total_cmp(&score[*b]));
        // Weights as a resample might give, including zeros and repeats.
        for weights in [vec![1u64; 23], (0..23).map(|i| i % 4).collect()] {
            let expanded: Vec<(Label, f64)> = (0..23)
                .flat_map(|r| std::iter::repeat_n((labels[r], score[r]), weights[r] as usize))
                .collect();
            let want = threshold_free(&expanded, DEFAULT_ECE_BINS).and_then(|t| t.auroc);
            assert!(want.is_some());
            assert_eq!(weighted_auroc(&order, &score, &labels, &weights), want);
        }
        // A class without weight: no AUROC.
        let only_pass: Vec<u64> = labels
            .iter()
            .map(|l| u64::from(*l == Label::Pass))
            .collect();
        assert_eq!(weighted_auroc(&order, &score, &labels, &only_pass), None);
    }

    #[test]
    fn auroc_bootstrap_skips_unusable_p_fail_and_checks_settings() {
        let mut rows = data(1);
        assert_eq!(
            bootstrap_auroc(&rows, &BootstrapConfig::default()),
            Ok(None)
        );
        for (i, j) in rows.iter_mut().enumerate() {
            j.p_fail = Some(if i % 5 == 0 {
                f64::NAN
            } else {
                (i % 9) as f64 / 8.0
            });
        }
        let a = bootstrap_auroc(&rows, &BootstrapConfig::default())
            .expect("settings")
            .expect("p_fail");
        let usable = rows
            .iter()
            .filter(|j| j.p_fail.is_some_and(|p| !p.is_nan()))
            .count();
        assert_eq!(a.all_rows.map(|i| i.n_scored), Some(usable));
        assert!(matches!(
            bootstrap_auroc(
                &rows,
                &BootstrapConfig {
                    resamples: 0,
                    ..BootstrapConfig::default()
                }
            ),
            Err(ScoreError::BootstrapConfig(_))
        ));
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 1.0), 5.0);
        assert_eq!(percentile(&sorted, 0.5), 3.0);
        // numpy.percentile([1, 2, 3, 4, 5], 2.5) == 1.1
        assert!((percentile(&sorted, 0.025) - 1.1).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 0.975), 7.0);
    }
}
