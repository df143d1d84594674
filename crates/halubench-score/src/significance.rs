//! Significance tests for comparing judges: the exact McNemar test on paired verdicts, and
//! Holm–Bonferroni adjustment when several comparisons are made at once (per task, or one
//! judge against several).

use halubench_core::Judgement;
use serde::Serialize;

use crate::ScoreError;
use crate::pairs::{Pair, pair_up};

/// The outcome of an exact McNemar test between two judges on the same examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    /// Examples the first judge got right and the second wrong (McNemar's b).
    pub first_only_correct: u64,
    /// Examples the second judge got right and the first wrong (McNemar's c).
    pub second_only_correct: u64,
    /// Two-sided exact p-value.
    pub p_value: f64,
}

/// Exact (binomial) two-sided McNemar p-value for `b` and `c` discordant pairs:
/// `min(1, 2 · P(X ≤ min(b, c)))` with `X ~ Binomial(b + c, 1/2)`, and 1 when `b + c = 0`
/// (no discordant pair is no evidence of a difference).
///
/// Stable for any counts: the binomial terms are summed relative to the largest one, whose
/// logarithm comes from log-factorials, so nothing overflows or underflows on the way (only a
/// p-value below about 1e-308 comes out as 0).
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    // f64 holds every count a benchmark can produce exactly (below 2^53).
    let n = b as f64 + c as f64;
    if n == 0.0 {
        return 1.0;
    }
    let k = b.min(c);
    // The pmf of Binomial(n, 1/2) increases up to n/2, and k <= n/2, so pmf(k) is the largest
    // term of P(X <= k). Walk down from it with pmf(j - 1) = pmf(j) · j / (n − j + 1); the
    // terms only shrink, so the running sum is accurate to a few ulps.
    let mut sum = 1.0;
    let mut term = 1.0;
    for j in (1..=k).rev() {
        let j = j as f64;
        term *= j / (n - j + 1.0);
        if term == 0.0 {
            break; // underflowed: the rest is far below the sum's precision
        }
        sum += term;
    }
    let kf = k as f64;
    let ln_pmf_k =
        ln_factorial(n) - ln_factorial(kf) - ln_factorial(n - kf) - n * std::f64::consts::LN_2;
    let cdf = ln_pmf_k.exp() * sum;
    (2.0 * cdf).min(1.0)
}

/// Exact McNemar test of two judges on the same examples (same ids, tasks and labels; an
/// error otherwise). INVALID counts as wrong.
pub fn mcnemar_judges(first: &[Judgement], second: &[Judgement]) -> Result<McNemar, ScoreError> {
    Ok(mcnemar_pairs(&pair_up(first, second)?))
}

/// The exact McNemar test on paired verdicts.
pub(crate) fn mcnemar_pairs<'a>(pairs: impl IntoIterator<Item = &'a Pair<'a>>) -> McNemar {
    let (mut b, mut c) = (0u64, 0u64);
    for p in pairs {
        b += u64::from(p.first_correct && !p.second_correct);
        c += u64::from(!p.first_correct && p.second_correct);
    }
    McNemar {
        first_only_correct: b,
        second_only_correct: c,
        p_value: mcnemar_exact(b, c),
    }
}

/// `ln(n!)` for a non-negative whole number `n` given as f64.
///
/// Small `n` multiply out exactly (18! < 2^53) before the one rounding of `ln`. From 19 on,
/// Stirling's series with terms up to `n^-7`; its truncation error is below the next term,
/// `1/(1188 n^9)` < 3e-15 at n = 19, and it shrinks fast. The result's absolute error is a few
/// ulps of `ln(n!)` itself, which is what the cancellation in `ln C(n, k)` can tolerate.
pub(crate) fn ln_factorial(n: f64) -> f64 {
    if n < 19.0 {
        let mut product = 1.0;
        let mut i = 2.0;
        while i <= n {
            product *= i;
            i += 1.0;
        }
        return product.ln();
    }
    let inv = 1.0 / n;
    let inv2 = inv * inv;
    // 1/(12n) − 1/(360n³) + 1/(1260n⁵) − 1/(1680n⁷), in Horner form.
    let series = inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)));
    n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + series
}

/// Holm–Bonferroni adjusted p-values, in the order given. The i-th smallest of m p-values is
/// multiplied by m − i + 1 (i from 1), each adjusted value is raised to at least the one
/// before it so that the adjustment stays monotone (step-down), and all are capped at 1.
/// Reject a hypothesis at level α when its adjusted p-value is ≤ α; this controls the
/// family-wise error rate without assuming the tests independent.
///
/// An error if a value is not a probability (NaN included).
pub fn holm(p_values: &[f64]) -> Result<Vec<f64>, ScoreError> {
    if let Some((index, &value)) = p_values
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(ScoreError::InvalidPValue { index, value });
    }
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    // Stable sort: equal p-values keep their input order, which does not change the result
    // but keeps the computation deterministic.
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    let mut adjusted = vec![0.0; m];
    let mut running_max: f64 = 0.0;
    for (rank, &index) in order.iter().enumerate() {
        let scaled = ((m - rank) as f64 * p_values[index]).min(1.0);
        running_max = running_max.max(scaled);
        adjusted[index] = running_max;
    }
    Ok(adjusted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::{Label, Verdict};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn mcnemar_without_discordant_pairs_is_one() {
        assert_eq!(mcnemar_exact(0, 0), 1.0);
    }

    #[test]
    fn mcnemar_small_cases_by_hand() {
        // b=0, c=3: 2 · (1/8).
        assert!(close(mcnemar_exact(0, 3), 0.25));
        // b=1, c=4: P(X <= 1) = (1 + 5)/32; p = 12/32.
        assert!(close(mcnemar_exact(1, 4), 0.375));
        assert!(close(mcnemar_exact(4, 1), 0.375));
        // b=3, c=7: P(X <= 3) = (1 + 10 + 45 + 120)/1024; p = 352/1024.
        assert!(close(mcnemar_exact(3, 7), 352.0 / 1024.0));
        // b=c: 2 · P(X <= n/2) > 1, capped.
        assert_eq!(mcnemar_exact(2, 2), 1.0);
        assert_eq!(mcnemar_exact(1, 0), 1.0);
    }

    #[test]
    fn mcnemar_is_finite_and_symmetric_for_huge_counts() {
        let p = mcnemar_exact(1_000_000, 1_002_000);
        assert!(p > 0.0 && p < 1.0, "{p}");
        assert_eq!(p, mcnemar_exact(1_002_000, 1_000_000));
        // Far in the tail the p-value underflows to 0 rather than becoming NaN.
        assert_eq!(mcnemar_exact(0, 5000), 0.0);
    }

    #[test]
    fn ln_factorial_matches_exact_values_on_both_sides_of_the_switch() {
        assert_eq!(ln_factorial(0.0), 0.0);
        assert_eq!(ln_factorial(1.0), 0.0);
        let mut exact = 0.0f64;
        for n in 1..=40 {
            exact += (n as f64).ln();
            let got = ln_factorial(n as f64);
            assert!((got - exact).abs() < 1e-12, "n={n}: {got} vs {exact}");
        }
    }

    #[test]
    fn holm_on_a_known_list() {
        // Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → raised to 0.06.
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]).expect("valid");
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (got, want) in adjusted.iter().zip(expected) {
            assert!(close(*got, want), "{adjusted:?}");
        }
        assert_eq!(holm(&[0.5, 0.6]).expect("valid"), [1.0, 1.0]);
        assert_eq!(holm(&[]).expect("valid"), Vec::<f64>::new());
        assert_eq!(holm(&[0.2]).expect("valid"), [0.2]);
    }

    #[test]
    fn holm_rejects_non_probabilities() {
        assert_eq!(
            holm(&[0.1, 1.5]),
            Err(ScoreError::InvalidPValue {
                index: 1,
                value: 1.5
            })
        );
        assert!(matches!(
            holm(&[f64::NAN]),
            Err(ScoreError::InvalidPValue { index: 0, .. })
        ));
    }

    #[test]
    fn mcnemar_of_two_judges_counts_discordant_pairs() {
        let judgement = |id: &str, verdict| Judgement::new(id, "t", Label::Fail, verdict);
        use Verdict::*;
        let first = [
            judgement("1", Fail),
            judgement("2", Fail),
            judgement("3", Invalid),
            judgement("4", Pass),
        ];
        let second = [
            judgement("1", Fail),
            judgement("2", Invalid),
            judgement("3", Fail),
            judgement("4", Fail),
        ];
        let test = mcnemar_judges(&first, &second).expect("paired");
        assert_eq!((test.first_only_correct, test.second_only_correct), (1, 2));
        assert_eq!(test.p_value, 1.0);
    }
}
