//! Scores of the judge's probability `p_fail` that need no threshold: how well it ranks
//! hallucinations above faithful answers (AUROC, average precision), how good it is as a
//! probability (Brier score, expected calibration error), and the best balanced accuracy
//! any threshold on it could reach.
//!
//! FAIL (a hallucination) is the positive class throughout, `y = 1` for FAIL and `0` for
//! PASS, so every value here can be checked against scikit-learn called with
//! `pos_label="FAIL"` (see `tests/reference_ranking.py`).

use halubench_core::Label;

/// Bins of the expected calibration error when the caller has no reason to choose: ten
/// equal-width bins is the usual choice in the calibration literature, so the number is
/// comparable with published ones.
pub const DEFAULT_ECE_BINS: usize = 10;

/// The threshold-free scores of one set of `(label, p_fail)` pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdFree {
    /// Pairs scored: those with `p_fail` finite and in `[0, 1]`.
    pub n_scored: usize,
    /// Pairs left out because `p_fail` was NaN, infinite or outside `[0, 1]`: such a value is
    /// no probability, and clamping it would invent one.
    pub n_skipped: usize,
    /// Area under the ROC curve: the chance that a random FAIL row gets a higher `p_fail`
    /// than a random PASS row, a tie counting one half (the Mann–Whitney statistic, and
    /// scikit-learn's `roc_auc_score`). `None` when only one class is present.
    pub auroc: Option<f64>,
    /// Average precision of the FAIL class, exactly as scikit-learn's
    /// `average_precision_score`: `Σ (R_n − R_{n−1}) · P_n` over the distinct scores taken as
    /// thresholds from the highest down, tied scores entering together. Unlike the
    /// trapezoidal area under the precision–recall curve it does not interpolate, which
    /// would be optimistic. `None` when there is no FAIL row.
    pub pr_auc: Option<f64>,
    /// Mean of `(p − y)²` (scikit-learn's `brier_score_loss`): 0 is perfect, 0.25 is what a
    /// constant 0.5 earns.
    pub brier: f64,
    /// Expected calibration error with equal-width bins on `[0, 1]`:
    /// `Σ_b (n_b / N) · |mean(y in b) − mean(p in b)|` over the non-empty bins `b`. With `B`
    /// bins, `p` falls in bin `⌊p · B⌋` (computed in `f64`), and 1.0 in the top bin.
    pub ece: f64,
    /// The best balanced accuracy a threshold on `p_fail` reaches on these same rows, and
    /// that threshold. An optimistic, in-sample figure: what the scores could give, not what
    /// a threshold chosen beforehand would. `None` when only one class is present.
    pub best_balanced_accuracy: Option<BestThreshold>,
}

/// A threshold on `p_fail` (FAIL predicted when `p_fail ≥ threshold`) and the balanced
/// accuracy, `(TPR + TNR) / 2`, it gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestThreshold {
    pub balanced_accuracy: f64,
    /// One of the distinct scores, or `f64::INFINITY` (never predict FAIL) when no score
    /// beats that. Of thresholds that tie, the highest.
    pub threshold: f64,
}

/// Scores `(label, p_fail)` pairs with no threshold; `ece` uses `bins` equal-width bins (0 is
/// read as 1). Pairs whose `p_fail` is not a probability are skipped and counted in
/// `n_skipped`. `None` when no pair is left to score.
pub fn threshold_free(pairs: &[(Label, f64)], bins: usize) -> Option<ThresholdFree> {
    let scored = scored(pairs);
    if scored.is_empty() {
        return None;
    }
    let n = scored.len();
    let n_fail = scored.iter().filter(|(fail, _)| *fail).count();
    let n_pass = n - n_fail;
    let groups = groups(&scored);
    let both_classes = n_fail > 0 && n_pass > 0;

    let brier = scored
        .iter()
        .map(|&(fail, p)| (p - y(fail)).powi(2))
        .sum::<f64>()
        / n as f64;

    Some(ThresholdFree {
        n_scored: n,
        n_skipped: pairs.len() - n,
        auroc: both_classes.then(|| auroc(&groups, n_fail, n_pass)),
        pr_auc: (n_fail > 0).then(|| average_precision(&groups, n_fail)),
        brier,
        ece: ece(&scored, bins.max(1)),
        best_balanced_accuracy: both_classes.then(|| best_threshold(&groups, n_fail, n_pass)),
    })
}

/// One point per distinct score on the ROC curve of `p_fail`, as `(false positive rate, true
/// positive rate)`: from `(0, 0)` (threshold above every score, nothing flagged) through each
/// distinct score taken as threshold from the highest down, to `(1, 1)` (everything flagged).
/// Tied scores enter together, so a tie is one diagonal step rather than a staircase in an
/// order the data does not have; the points are those of scikit-learn's `roc_curve` with
/// `drop_intermediate=False`, and their trapezoidal area is [`ThresholdFree::auroc`].
///
/// Pairs are skipped as in [`threshold_free`]. `None` when no FAIL or no PASS row is left:
/// one of the two rates would divide by zero.
pub fn roc_points(pairs: &[(Label, f64)]) -> Option<Vec<(f64, f64)>> {
    let scored = scored(pairs);
    let n_fail = scored.iter().filter(|(fail, _)| *fail).count();
    let n_pass = scored.len() - n_fail;
    if n_fail == 0 || n_pass == 0 {
        return None;
    }
    let groups = groups(&scored);
    let mut points = Vec::with_capacity(groups.len() + 1);
    points.push((0.0, 0.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    for group in groups.iter().rev() {
        tp += group.fail;
        fp += group.pass;
        // Counts divided only here, so the last point is exactly (1, 1).
        points.push((fp as f64 / n_pass as f64, tp as f64 / n_fail as f64));
    }
    Some(points)
}

/// One bin of a reliability diagram: the rows whose `p_fail` falls in `[lower, upper)` (the
/// top bin also holds 1.0), how confident the judge was on them and how often they failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReliabilityBin {
    /// The bin's lower edge, `b / B`.
    pub lower: f64,
    /// The bin's upper edge, `(b + 1) / B`.
    pub upper: f64,
    /// Rows in the bin; never 0 (empty bins are left out, they have no rate to plot).
    pub n: usize,
    /// Mean `p_fail` of those rows: the x of the diagram, not the bin's centre, so a bin
    /// whose rows crowd one edge is drawn where they are.
    pub mean_p: f64,
    /// Share of those rows labelled FAIL: the y of the diagram. A calibrated judge has
    /// `fail_rate ≈ mean_p`.
    pub fail_rate: f64,
}

/// The non-empty bins of a reliability diagram of `p_fail`, lowest first, binned exactly as
/// [`ThresholdFree::ece`] (`bins` equal-width bins on `[0, 1]`, 0 read as 1), so that
/// `Σ n / N · |fail_rate − mean_p|` over the bins is that ECE. Pairs are skipped as in
/// [`threshold_free`]; empty when none is left.
pub fn reliability_bins(pairs: &[(Label, f64)], bins: usize) -> Vec<ReliabilityBin> {
    let bins = bins.max(1);
    bin_sums(&scored(pairs), bins)
        .into_iter()
        .enumerate()
        .filter(|(_, (count, _, _))| *count > 0)
        .map(|(b, (count, sum_y, sum_p))| ReliabilityBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            n: count,
            mean_p: sum_p / count as f64,
            fail_rate: sum_y / count as f64,
        })
        .collect()
}

/// The pairs whose `p_fail` is a probability, as `(is FAIL, p)`, lowest `p` first. Every
/// score here starts from this one list, so they all skip the same rows and add them up in
/// the same order.
fn scored(pairs: &[(Label, f64)]) -> Vec<(bool, f64)> {
    let mut scored: Vec<(bool, f64)> = pairs
        .iter()
        .filter(|(_, p)| is_probability(*p))
        .map(|&(label, p)| (label == Label::Fail, p))
        .collect();
    // Ascending; `total_cmp` puts -0.0 before 0.0, but `groups` joins them as equal. Ties
    // are ordered by label too, so that sums (Brier) come out bit for bit the same whatever
    // order the judgements arrived in.
    scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    scored
}

/// The rows that share one score: the unit every curve moves by, so that ties are never
/// split in an order the data does not have.
struct Group {
    score: f64,
    fail: usize,
    pass: usize,
}

/// Whether `p` is scored at all: finite and in `[0, 1]` (NaN fails the range test). Clamping
/// anything else would invent a probability.
pub(crate) fn is_probability(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

/// Tied scores of pairs sorted by score, lowest first.
fn groups(sorted: &[(bool, f64)]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for &(fail, p) in sorted {
        match groups.last_mut() {
            Some(last) if last.score == p => {}
            _ => groups.push(Group {
                score: p,
                fail: 0,
                pass: 0,
            }),
        }
        let last = groups.last_mut().expect("a group was just ensured");
        if fail {
            last.fail += 1;
        } else {
            last.pass += 1;
        }
    }
    groups
}

fn y(fail: bool) -> f64 {
    if fail { 1.0 } else { 0.0 }
}

/// Mann–Whitney: each FAIL row wins against the PASS rows below it and half-wins against
/// those tied with it. Counting pairs needs no ranks and no trapezoids.
fn auroc(ascending: &[Group], n_fail: usize, n_pass: usize) -> f64 {
    let mut pass_below = 0usize;
    let mut wins = 0.0;
    for group in ascending {
        wins += group.fail as f64 * (pass_below as f64 + group.pass as f64 / 2.0);
        pass_below += group.pass;
    }
    wins / (n_fail as f64 * n_pass as f64)
}

/// scikit-learn's step sum: at each distinct score, from the highest down, the recall gained
/// times the precision reached.
fn average_precision(ascending: &[Group], n_fail: usize) -> f64 {
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut ap = 0.0;
    for group in ascending.iter().rev() {
        tp += group.fail;
        fp += group.pass;
        ap += (group.fail as f64 / n_fail as f64) * (tp as f64 / (tp + fp) as f64);
    }
    ap
}

/// Per bin of `bins` (at least 1) equal-width bins: rows, sum of y, sum of p. Shared by
/// [`ece`] and [`reliability_bins`] so the diagram and the number cannot disagree.
fn bin_sums(scored: &[(bool, f64)], bins: usize) -> Vec<(usize, f64, f64)> {
    let mut sums = vec![(0usize, 0.0, 0.0); bins];
    for &(fail, p) in scored {
        // `as usize` truncates, which is the floor for p ≥ 0; p = 1.0 would open bin `bins`.
        let bin = ((p * bins as f64) as usize).min(bins - 1);
        let (count, sum_y, sum_p) = &mut sums[bin];
        *count += 1;
        *sum_y += y(fail);
        *sum_p += p;
    }
    sums
}

fn ece(scored: &[(bool, f64)], bins: usize) -> f64 {
    let n = scored.len() as f64;
    bin_sums(scored, bins)
        .iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|&(count, sum_y, sum_p)| {
            let count = count as f64;
            count / n * (sum_y / count - sum_p / count).abs()
        })
        .sum()
}

/// Every threshold from +∞ down to the lowest score. Balanced accuracies are compared as
/// the integers `tp · n_pass + tn · n_fail` (the balanced accuracy times `2 · n_fail ·
/// n_pass`), so that two thresholds that tie really tie, and the higher one is kept.
fn best_threshold(ascending: &[Group], n_fail: usize, n_pass: usize) -> BestThreshold {
    let value = |tp: usize, tn: usize| tp as u128 * n_pass as u128 + tn as u128 * n_fail as u128;
    // At +∞ nothing is flagged: every PASS row is right, every FAIL row missed.
    let (mut tp, mut tn) = (0usize, n_pass);
    let mut best = (value(tp, tn), f64::INFINITY, tp, tn);
    for group in ascending.iter().rev() {
        tp += group.fail;
        tn -= group.pass;
        if value(tp, tn) > best.0 {
            best = (value(tp, tn), group.score, tp, tn);
        }
    }
    let (_, threshold, tp, tn) = best;
    BestThreshold {
        balanced_accuracy: (tp as f64 / n_fail as f64 + tn as f64 / n_pass as f64) / 2.0,
        threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Label::{Fail, Pass};

    fn score(pairs: &[(Label, f64)]) -> ThresholdFree {
        threshold_free(pairs, DEFAULT_ECE_BINS).expect("pairs to score")
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_separation_scores_one() {
        let t = score(&[(Pass, 0.1), (Pass, 0.2), (Fail, 0.7), (Fail, 0.9)]);
        assert_eq!(t.auroc, Some(1.0));
        assert_eq!(t.pr_auc, Some(1.0));
        assert_eq!(
            t.best_balanced_accuracy,
            Some(BestThreshold {
                balanced_accuracy: 1.0,
                threshold: 0.7
            })
        );
        // Inverted: every FAIL below every PASS.
        let t = score(&[(Fail, 0.1), (Fail, 0.2), (Pass, 0.7), (Pass, 0.9)]);
        assert_eq!(t.auroc, Some(0.0));
    }

    #[test]
    fn all_ties_are_chance() {
        let t = score(&[
            (Pass, 0.4),
            (Fail, 0.4),
            (Pass, 0.4),
            (Fail, 0.4),
            (Pass, 0.4),
        ]);
        assert_eq!(t.auroc, Some(0.5));
        // One threshold flags everything: recall 1 at precision 2/5, the base rate.
        assert!(close(t.pr_auc.unwrap_or(f64::NAN), 0.4));
        // Flagging everything or nothing is balanced accuracy 0.5; the higher threshold wins.
        assert_eq!(
            t.best_balanced_accuracy,
            Some(BestThreshold {
                balanced_accuracy: 0.5,
                threshold: f64::INFINITY
            })
        );
    }

    #[test]
    fn one_class_only_has_no_ranking() {
        let t = score(&[(Pass, 0.2), (Pass, 0.6)]);
        assert_eq!(
            (t.auroc, t.pr_auc, t.best_balanced_accuracy),
            (None, None, None)
        );
        assert!(close(t.brier, (0.04 + 0.36) / 2.0));

        // Only FAIL rows: precision is 1 at every threshold.
        let t = score(&[(Fail, 0.2), (Fail, 0.6)]);
        assert_eq!((t.auroc, t.best_balanced_accuracy), (None, None));
        assert_eq!(t.pr_auc, Some(1.0));
    }

    #[test]
    fn nothing_to_score_is_none() {
        assert_eq!(threshold_free(&[], DEFAULT_ECE_BINS), None);
        assert_eq!(threshold_free(&[(Fail, f64::NAN)], DEFAULT_ECE_BINS), None);
    }

    #[test]
    fn best_balanced_accuracy_by_hand() {
        // Scores descending: 0.9 F, 0.8 P, 0.6 F, 0.6 P, 0.3 F, 0.1 P (3 FAIL, 3 PASS).
        // t = inf: TPR 0,   TNR 1   -> 0.5
        // t = 0.9: TPR 1/3, TNR 1   -> 2/3
        // t = 0.8: TPR 1/3, TNR 2/3 -> 1/2
        // t = 0.6: TPR 2/3, TNR 1/3 -> 1/2
        // t = 0.3: TPR 1,   TNR 1/3 -> 2/3 (ties with 0.9: the higher threshold is kept)
        // t = 0.1: TPR 1,   TNR 0   -> 1/2
        let t = score(&[
            (Pass, 0.1),
            (Fail, 0.6),
            (Fail, 0.9),
            (Pass, 0.6),
            (Fail, 0.3),
            (Pass, 0.8),
        ]);
        let best = t.best_balanced_accuracy.expect("both classes");
        assert_eq!(best.threshold, 0.9);
        assert!(close(best.balanced_accuracy, 2.0 / 3.0));
        // Pairs won: 0.9 beats 3 PASS, 0.6 beats 1 and ties 1, 0.3 beats 1: 5.5 of 9.
        assert!(close(t.auroc.unwrap_or(f64::NAN), 5.5 / 9.0));
        // Recall steps of 1/3 at precision 1 (0.9), 2/4 (0.6) and 3/5 (0.3); 0.8 adds no
        // recall, so its precision does not count.
        assert!(close(t.pr_auc.unwrap_or(f64::NAN), (1.0 + 0.5 + 0.6) / 3.0));
    }

    #[test]
    fn ece_bins_by_hand() {
        // Two bins: [0, 0.5) holds 0.2 (PASS) and 0.4 (FAIL); [0.5, 1] holds 0.5 and 1.0
        // (both FAIL). |1/2 − 0.3| · 2/4 + |1 − 0.75| · 2/4 = 0.1 + 0.125.
        let pairs = [(Pass, 0.2), (Fail, 0.4), (Fail, 0.5), (Fail, 1.0)];
        let t = threshold_free(&pairs, 2).expect("pairs");
        assert!(close(t.ece, 0.225), "{}", t.ece);
        // One bin: the gap between the base rate and the mean score.
        let t = threshold_free(&pairs, 1).expect("pairs");
        assert!(close(t.ece, (0.75f64 - 2.1 / 4.0).abs()));
        assert_eq!(threshold_free(&pairs, 0), Some(t));
    }

    #[test]
    fn values_that_are_no_probability_are_skipped_and_counted() {
        let good = [(Pass, 0.0), (Fail, 1.0), (Pass, 0.3), (Fail, 0.3)];
        let mut with_bad = good.to_vec();
        with_bad.extend([
            (Fail, f64::NAN),
            (Pass, f64::INFINITY),
            (Fail, f64::NEG_INFINITY),
            (Pass, -0.01),
            (Fail, 1.01),
        ]);
        let clean = score(&good);
        let t = score(&with_bad);
        assert_eq!((t.n_scored, t.n_skipped), (4, 5));
        assert_eq!(ThresholdFree { n_skipped: 0, ..t }, clean);
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let t = score(&[(Fail, -0.0), (Pass, 0.0)]);
        assert_eq!(t.auroc, Some(0.5));
    }

    /// Scores with ties inside and across classes, and a NaN to skip.
    fn tied() -> Vec<(Label, f64)> {
        vec![
            (Pass, 0.1),
            (Fail, 0.6),
            (Fail, 0.9),
            (Pass, 0.6),
            (Fail, 0.3),
            (Pass, 0.8),
            (Pass, 0.3),
            (Fail, 0.3),
            (Pass, 0.05),
            (Fail, 1.0),
            (Pass, f64::NAN),
        ]
    }

    fn trapezoid(points: &[(f64, f64)]) -> f64 {
        points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum()
    }

    #[test]
    fn roc_points_by_hand() {
        // Descending: 0.9 F, 0.8 P, {0.6 F, 0.6 P}, 0.3 F, 0.1 P (3 FAIL, 3 PASS).
        let points = roc_points(&[
            (Pass, 0.1),
            (Fail, 0.6),
            (Fail, 0.9),
            (Pass, 0.6),
            (Fail, 0.3),
            (Pass, 0.8),
        ])
        .expect("both classes");
        let third = 1.0 / 3.0;
        let expected = [
            (0.0, 0.0),
            (0.0, third),
            (third, third),
            // The tie at 0.6 moves both rates at once: one diagonal step.
            (2.0 * third, 2.0 * third),
            (2.0 * third, 1.0),
            (1.0, 1.0),
        ];
        assert_eq!(points.len(), expected.len());
        for (got, want) in points.iter().zip(expected) {
            assert!(close(got.0, want.0) && close(got.1, want.1), "{points:?}");
        }
        assert!(close(trapezoid(&points), 5.5 / 9.0));
    }

    #[test]
    fn roc_area_is_auroc_with_ties() {
        let pairs = tied();
        let points = roc_points(&pairs).expect("both classes");
        assert_eq!(points.first(), Some(&(0.0, 0.0)));
        assert_eq!(points.last(), Some(&(1.0, 1.0)));
        // One point per distinct score, plus the origin: 1.0 0.9 0.8 0.6 0.3 0.1 0.05.
        assert_eq!(points.len(), 8);
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        let auroc = score(&pairs).auroc.expect("both classes");
        assert!(close(trapezoid(&points), auroc), "{auroc}");
        // All tied: the chance diagonal in one step.
        let flat = roc_points(&[(Pass, 0.4), (Fail, 0.4), (Pass, 0.4)]).expect("both");
        assert_eq!(flat, [(0.0, 0.0), (1.0, 1.0)]);
    }

    #[test]
    fn roc_needs_both_classes() {
        assert_eq!(roc_points(&[]), None);
        assert_eq!(roc_points(&[(Pass, 0.2), (Pass, 0.7)]), None);
        assert_eq!(roc_points(&[(Fail, 0.2), (Pass, f64::NAN)]), None);
    }

    #[test]
    fn reliability_bins_add_up_to_ece() {
        let pairs = tied();
        for bins in [0, 1, 2, 3, 10, 20] {
            let diagram = reliability_bins(&pairs, bins);
            let t = threshold_free(&pairs, bins).expect("pairs");
            let n: usize = diagram.iter().map(|b| b.n).sum();
            assert_eq!(n, t.n_scored);
            let ece: f64 = diagram
                .iter()
                .map(|b| b.n as f64 / n as f64 * (b.fail_rate - b.mean_p).abs())
                .sum();
            assert!(close(ece, t.ece), "{bins} bins: {ece} vs {}", t.ece);
            assert!(diagram.iter().all(|b| b.n > 0
                && b.lower <= b.mean_p
                && b.mean_p <= b.upper
                && (0.0..=1.0).contains(&b.fail_rate)));
            assert!(diagram.windows(2).all(|w| w[0].upper <= w[1].lower));
        }
    }

    #[test]
    fn reliability_bins_by_hand() {
        // As in `ece_bins_by_hand`: two bins, 1.0 in the top one.
        let pairs = [(Pass, 0.2), (Fail, 0.4), (Fail, 0.5), (Fail, 1.0)];
        let diagram = reliability_bins(&pairs, 2);
        assert_eq!(
            diagram,
            [
                ReliabilityBin {
                    lower: 0.0,
                    upper: 0.5,
                    n: 2,
                    mean_p: (0.2 + 0.4) / 2.0,
                    fail_rate: 0.5
                },
                ReliabilityBin {
                    lower: 0.5,
                    upper: 1.0,
                    n: 2,
                    mean_p: 0.75,
                    fail_rate: 1.0
                },
            ]
        );
        // Empty bins are left out; nothing scored is no bins.
        let diagram = reliability_bins(&pairs, 10);
        assert_eq!(
            diagram.iter().map(|b| (b.lower, b.n)).collect::<Vec<_>>(),
            [(0.2, 1), (0.4, 1), (0.5, 1), (0.9, 1)]
        );
        assert!(reliability_bins(&[(Fail, f64::INFINITY), (Pass, -0.5)], 10).is_empty());
    }
}
