//! Classification metrics of a judge, per task and over the whole run.
//!
//! # How INVALID is counted
//!
//! A judge can answer PASS, FAIL or INVALID (no usable verdict), while the truth is only
//! PASS or FAIL. Two rules follow from the paper and are applied everywhere here:
//!
//! - **Accuracy-type metrics** (accuracy, PASS accuracy, FAIL accuracy, balanced accuracy):
//!   INVALID is wrong whatever the label, as in the paper's Table 3 and in [`crate::Summary`].
//! - **Metrics of the hallucination (FAIL) class** (precision, recall, F1, MCC) need a binary
//!   prediction, so INVALID is read as *not flagged*, that is as a predicted PASS. A judge that
//!   cannot answer has not caught the hallucination, so an INVALID on a FAIL row is a miss
//!   (it lowers recall), and it has not raised a false alarm either, so an INVALID on a PASS
//!   row is not a false positive. The cost of that choice: on PASS rows INVALID counts as
//!   wrong for accuracy but as a true negative for MCC. The invalid rate is reported beside
//!   them so a judge cannot hide behind it.
//!
//! Undefined ratios follow two conventions, each stated on its field: the accuracies are
//! `None` when their class is absent (as in [`crate::TaskScore`]), and precision, recall, F1
//! and MCC are 0 when their denominator is 0 (scikit-learn's `zero_division=0`, and its rule
//! for `matthews_corrcoef`), so they can be compared with scikit-learn directly.

use std::collections::BTreeMap;

use halubench_core::{Judgement, Label, Verdict};
use serde::Serialize;

use crate::ranking::{DEFAULT_ECE_BINS, ThresholdFree, threshold_free};

/// How often each verdict was given on rows of one label: a row of the confusion matrix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    #[serde(rename = "PASS")]
    pub pass: usize,
    #[serde(rename = "FAIL")]
    pub fail: usize,
    #[serde(rename = "INVALID")]
    pub invalid: usize,
}

impl VerdictCounts {
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.invalid
    }
}

/// Confusion matrix: rows are the labels, columns the verdicts. `confusion.fail.invalid` is
/// the number of FAIL rows the judge answered INVALID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// Rows labelled PASS.
    #[serde(rename = "PASS")]
    pub pass: VerdictCounts,
    /// Rows labelled FAIL.
    #[serde(rename = "FAIL")]
    pub fail: VerdictCounts,
}

/// The confusion matrix collapsed to the binary view of the hallucination (FAIL) class, with
/// INVALID read as a predicted PASS (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailClassCounts {
    /// FAIL rows judged FAIL.
    pub true_positive: usize,
    /// PASS rows judged FAIL.
    pub false_positive: usize,
    /// FAIL rows judged PASS or INVALID.
    pub false_negative: usize,
    /// PASS rows judged PASS or INVALID.
    pub true_negative: usize,
}

impl Confusion {
    pub fn from_judgements<'a>(judgements: impl IntoIterator<Item = &'a Judgement>) -> Confusion {
        let mut confusion = Confusion::default();
        for judgement in judgements {
            confusion.add(judgement.label, judgement.verdict);
        }
        confusion
    }

    pub fn add(&mut self, label: Label, verdict: Verdict) {
        let row = match label {
            Label::Pass => &mut self.pass,
            Label::Fail => &mut self.fail,
        };
        match verdict {
            Verdict::Pass => row.pass += 1,
            Verdict::Fail => row.fail += 1,
            Verdict::Invalid => row.invalid += 1,
        }
    }

    pub fn n(&self) -> usize {
        self.pass.total() + self.fail.total()
    }

    /// Rows whose verdict matches the label; INVALID never does.
    pub fn correct(&self) -> usize {
        self.pass.pass + self.fail.fail
    }

    pub fn invalid(&self) -> usize {
        self.pass.invalid + self.fail.invalid
    }

    pub fn fail_class(&self) -> FailClassCounts {
        FailClassCounts {
            true_positive: self.fail.fail,
            false_positive: self.pass.fail,
            false_negative: self.fail.pass + self.fail.invalid,
            true_negative: self.pass.pass + self.pass.invalid,
        }
    }
}

/// Every metric of one set of judgements (a task, or all rows of a run). Fractions are 0–1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub n: usize,
    pub correct: usize,
    pub invalid: usize,
    /// `correct / n`, INVALID counting as wrong; 0 when there are no rows.
    pub accuracy: f64,
    /// Accuracy on PASS rows; `None` when there are none.
    pub pass_accuracy: Option<f64>,
    /// Accuracy on FAIL rows; `None` when there are none.
    pub fail_accuracy: Option<f64>,
    /// Mean of PASS and FAIL accuracy over the classes present (scikit-learn's
    /// `balanced_accuracy_score`); `None` when there are no rows.
    pub balanced_accuracy: Option<f64>,
    /// Of the rows judged FAIL, the share labelled FAIL; 0 when nothing was judged FAIL.
    pub precision: f64,
    /// Of the FAIL rows, the share judged FAIL (INVALID is a miss); 0 when there are none.
    pub recall: f64,
    /// Harmonic mean of precision and recall, `2tp / (2tp + fp + fn)`; 0 when undefined.
    pub f1: f64,
    /// Matthews correlation coefficient of the binary view; 0 when undefined (a constant
    /// label or prediction), as scikit-learn returns.
    pub mcc: f64,
    /// `invalid / n`; 0 when there are no rows.
    pub invalid_rate: f64,
    pub confusion: Confusion,
    /// The threshold-free scores of `p_fail` on the rows that have one; `None` when none
    /// has. Not serialised: `summary.json` and `compare.json` carry them in their own shape.
    #[serde(skip)]
    pub threshold_free: Option<ThresholdFree>,
}

/// `num / den`, or `None` for an empty denominator.
fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Metrics {
    pub fn from_confusion(confusion: Confusion) -> Metrics {
        let n = confusion.n();
        let correct = confusion.correct();
        let invalid = confusion.invalid();
        let pass_accuracy = ratio(confusion.pass.pass, confusion.pass.total());
        let fail_accuracy = ratio(confusion.fail.fail, confusion.fail.total());
        let present: Vec<f64> = [pass_accuracy, fail_accuracy]
            .into_iter()
            .flatten()
            .collect();
        let balanced_accuracy =
            (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64);

        let FailClassCounts {
            true_positive: tp,
            false_positive: fp,
            false_negative: fn_,
            true_negative: tn,
        } = confusion.fail_class();
        let precision = ratio(tp, tp + fp).unwrap_or(0.0);
        let recall = ratio(tp, tp + fn_).unwrap_or(0.0);
        let f1 = ratio(2 * tp, 2 * tp + fp + fn_).unwrap_or(0.0);

        Metrics {
            n,
            correct,
            invalid,
            accuracy: ratio(correct, n).unwrap_or(0.0),
            pass_accuracy,
            fail_accuracy,
            balanced_accuracy,
            precision,
            recall,
            f1,
            mcc: matthews(tp, fp, fn_, tn),
            invalid_rate: ratio(invalid, n).unwrap_or(0.0),
            confusion,
            threshold_free: None,
        }
    }

    pub fn from_judgements<'a>(judgements: impl IntoIterator<Item = &'a Judgement>) -> Metrics {
        let mut rows = Rows::default();
        judgements.into_iter().for_each(|j| rows.add(j));
        rows.metrics()
    }
}

/// What metrics are computed from, gathered in one pass: the confusion matrix and the
/// `(label, p_fail)` of the rows that have a `p_fail`.
#[derive(Default)]
struct Rows {
    confusion: Confusion,
    probabilities: Vec<(Label, f64)>,
}

impl Rows {
    fn add(&mut self, judgement: &Judgement) {
        self.confusion.add(judgement.label, judgement.verdict);
        if let Some(p) = judgement.p_fail {
            self.probabilities.push((judgement.label, p));
        }
    }

    fn metrics(&self) -> Metrics {
        Metrics {
            threshold_free: threshold_free(&self.probabilities, DEFAULT_ECE_BINS),
            ..Metrics::from_confusion(self.confusion)
        }
    }
}

/// Binary Matthews correlation coefficient. Counts are turned into floats before multiplying:
/// the product of the four marginals overflows `usize` arithmetic on 32-bit targets already
/// at a few hundred rows, and an f64 keeps 15 significant digits, which is plenty here.
fn matthews(tp: usize, fp: usize, fn_: usize, tn: usize) -> f64 {
    let (tp, fp, fn_, tn) = (tp as f64, fp as f64, fn_ as f64, tn as f64);
    let denominator = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
    if denominator == 0.0 {
        return 0.0;
    }
    (tp * tn - fp * fn_) / denominator
}

/// Metrics of a run: per task, pooled over all rows, and the paper's Overall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Keyed by the dataset's `source_ds` spelling.
    pub tasks: BTreeMap<String, Metrics>,
    /// All rows pooled, each weighted equally: a large task (HaluBench's 10,000 HaluEval rows)
    /// dominates it. `all_rows.accuracy` is `Summary::overall_micro`.
    pub all_rows: Metrics,
    /// Unweighted mean of the task accuracies: the paper's Overall and
    /// `Summary::overall_macro`. 0 when there are no tasks.
    pub overall_macro: f64,
}

/// Scores a set of judgements: metrics per task, pooled, and the macro Overall.
pub fn metrics<'a>(judgements: impl IntoIterator<Item = &'a Judgement>) -> Report {
    let mut per_task: BTreeMap<String, Rows> = BTreeMap::new();
    let mut pooled = Rows::default();
    for judgement in judgements {
        per_task
            .entry(judgement.task.clone())
            .or_default()
            .add(judgement);
        pooled.add(judgement);
    }
    let tasks: BTreeMap<String, Metrics> = per_task
        .into_iter()
        .map(|(task, rows)| (task, rows.metrics()))
        .collect();
    let overall_macro = if tasks.is_empty() {
        0.0
    } else {
        tasks.values().map(|m| m.accuracy).sum::<f64>() / tasks.len() as f64
    };
    Report {
        tasks,
        all_rows: pooled.metrics(),
        overall_macro,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Summary;

    fn judgement(task: &str, label: Label, verdict: Verdict) -> Judgement {
        Judgement::new(String::new(), task, label, verdict)
    }

    /// `count` copies of one (label, verdict) pair in task `t`.
    fn rows(count: usize, label: Label, verdict: Verdict) -> Vec<Judgement> {
        (0..count).map(|_| judgement("t", label, verdict)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_confusion_matrix() {
        use Label as L;
        use Verdict as V;
        // PASS rows: 6 PASS, 2 FAIL, 2 INVALID. FAIL rows: 5 FAIL, 3 PASS, 2 INVALID.
        let data: Vec<Judgement> = [
            rows(6, L::Pass, V::Pass),
            rows(2, L::Pass, V::Fail),
            rows(2, L::Pass, V::Invalid),
            rows(5, L::Fail, V::Fail),
            rows(3, L::Fail, V::Pass),
            rows(2, L::Fail, V::Invalid),
        ]
        .concat();
        let m = Metrics::from_judgements(&data);
        assert_eq!(
            m.confusion,
            Confusion {
                pass: VerdictCounts {
                    pass: 6,
                    fail: 2,
                    invalid: 2
                },
                fail: VerdictCounts {
                    pass: 3,
                    fail: 5,
                    invalid: 2
                },
            }
        );
        assert_eq!((m.n, m.correct, m.invalid), (20, 11, 4));
        assert!(close(m.accuracy, 11.0 / 20.0));
        assert_eq!(m.pass_accuracy, Some(0.6));
        assert_eq!(m.fail_accuracy, Some(0.5));
        assert!(close(m.balanced_accuracy.unwrap_or(f64::NAN), 0.55));
        // Binary view: tp 5, fp 2, fn 3 + 2 = 5, tn 6 + 2 = 8.
        assert_eq!(
            m.confusion.fail_class(),
            FailClassCounts {
                true_positive: 5,
                false_positive: 2,
                false_negative: 5,
                true_negative: 8
            }
        );
        assert!(close(m.precision, 5.0 / 7.0));
        assert!(close(m.recall, 0.5));
        assert!(close(m.f1, 10.0 / 17.0));
        // (5*8 - 2*5) / sqrt(7 * 10 * 10 * 13) = 30 / sqrt(9100)
        assert!(close(m.mcc, 30.0 / 9100f64.sqrt()));
        assert!(close(m.invalid_rate, 0.2));
    }

    #[test]
    fn mcc_is_one_for_a_perfect_judge_and_minus_one_for_an_inverted_one() {
        use Label as L;
        use Verdict as V;
        let perfect = [rows(3, L::Pass, V::Pass), rows(4, L::Fail, V::Fail)].concat();
        let m = Metrics::from_judgements(&perfect);
        assert!(close(m.mcc, 1.0));
        assert!(close(m.f1, 1.0));
        assert_eq!(m.balanced_accuracy, Some(1.0));

        let inverted = [rows(3, L::Pass, V::Fail), rows(4, L::Fail, V::Pass)].concat();
        let m = Metrics::from_judgements(&inverted);
        assert!(close(m.mcc, -1.0));
        assert_eq!(
            (m.accuracy, m.precision, m.recall, m.f1),
            (0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn mcc_is_zero_for_chance_and_when_undefined() {
        use Label as L;
        use Verdict as V;
        // One of each cell: no correlation, defined denominator.
        let chance = [
            rows(1, L::Pass, V::Pass),
            rows(1, L::Pass, V::Fail),
            rows(1, L::Fail, V::Pass),
            rows(1, L::Fail, V::Fail),
        ]
        .concat();
        assert_eq!(Metrics::from_judgements(&chance).mcc, 0.0);

        // A judge that never flags anything: precision and MCC are undefined, reported as 0.
        let never_flags = [rows(3, L::Pass, V::Pass), rows(2, L::Fail, V::Invalid)].concat();
        let m = Metrics::from_judgements(&never_flags);
        assert_eq!((m.mcc, m.precision, m.recall, m.f1), (0.0, 0.0, 0.0, 0.0));
        assert!(close(m.invalid_rate, 0.4));

        // Only one class present: MCC undefined, balanced accuracy is that class's accuracy.
        let one_class = [rows(3, L::Pass, V::Pass), rows(1, L::Pass, V::Fail)].concat();
        let m = Metrics::from_judgements(&one_class);
        assert_eq!(m.mcc, 0.0);
        assert_eq!(m.fail_accuracy, None);
        assert_eq!(m.balanced_accuracy, Some(0.75));
    }

    #[test]
    fn invalid_is_wrong_for_accuracy_and_unflagged_for_the_fail_class() {
        use Label as L;
        use Verdict as V;
        let data = [rows(2, L::Pass, V::Invalid), rows(2, L::Fail, V::Fail)].concat();
        let m = Metrics::from_judgements(&data);
        assert_eq!(m.pass_accuracy, Some(0.0));
        assert_eq!(m.accuracy, 0.5);
        // The INVALID PASS rows are true negatives in the binary view: no false alarm.
        assert_eq!((m.precision, m.recall), (1.0, 1.0));
        assert!(close(m.mcc, 1.0));
    }

    #[test]
    fn report_agrees_with_summary() {
        use Label as L;
        use Verdict as V;
        let data = vec![
            judgement("DROP", L::Pass, V::Pass),
            judgement("DROP", L::Pass, V::Invalid),
            judgement("DROP", L::Fail, V::Fail),
            judgement("DROP", L::Fail, V::Fail),
            judgement("halueval", L::Pass, V::Fail),
            judgement("halueval", L::Fail, V::Fail),
        ];
        let report = metrics(&data);
        let summary = Summary::from_judgements(&data);
        assert!(close(report.overall_macro, summary.overall_macro));
        assert!(close(report.all_rows.accuracy, summary.overall_micro));
        for (task, score) in &summary.tasks {
            let m = &report.tasks[task];
            assert_eq!(
                (m.n, m.correct, m.invalid),
                (score.n, score.correct, score.invalid)
            );
            assert_eq!(m.pass_accuracy, score.pass_accuracy);
            assert_eq!(m.fail_accuracy, score.fail_accuracy);
        }
        assert_eq!(report.tasks["DROP"].accuracy, 0.75);
    }

    #[test]
    fn empty_input_gives_zeros_and_nones() {
        let report = metrics(&[]);
        assert!(report.tasks.is_empty());
        assert_eq!(report.overall_macro, 0.0);
        let m = &report.all_rows;
        assert_eq!((m.n, m.accuracy, m.mcc, m.invalid_rate), (0, 0.0, 0.0, 0.0));
        assert_eq!(m.balanced_accuracy, None);
    }

    #[test]
    fn confusion_serialises_with_the_journal_spellings() {
        let m = Metrics::from_judgements(&rows(1, Label::Fail, Verdict::Invalid));
        let json = serde_json::to_value(&m).unwrap_or_default();
        assert_eq!(json["confusion"]["FAIL"]["INVALID"], 1);
        assert_eq!(json["confusion"]["PASS"]["PASS"], 0);
    }
}
