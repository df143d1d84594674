//! Matching two judges' judgements example by example, for the paired statistics (the paired
//! bootstrap and McNemar's test). Both need the same examples judged by both judges; anything
//! else is an error rather than a silent intersection, because comparing judges on different
//! subsets would bias the comparison.

use std::collections::BTreeMap;

use halubench_core::{Judgement, Label};

use crate::ScoreError;

/// One example as judged by both judges.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pair<'a> {
    pub(crate) id: &'a str,
    pub(crate) task: &'a str,
    pub(crate) label: Label,
    pub(crate) first_correct: bool,
    pub(crate) second_correct: bool,
    /// Each judge's `p_fail`, as given (not checked to be a probability).
    pub(crate) first_p_fail: Option<f64>,
    pub(crate) second_p_fail: Option<f64>,
}

fn by_id<'a>(
    judgements: &'a [Judgement],
    judge: &'static str,
) -> Result<BTreeMap<&'a str, &'a Judgement>, ScoreError> {
    let mut map = BTreeMap::new();
    for judgement in judgements {
        if map.insert(judgement.id.as_str(), judgement).is_some() {
            return Err(ScoreError::DuplicateId {
                judge,
                id: judgement.id.clone(),
            });
        }
    }
    Ok(map)
}

/// The examples both judges judged, sorted by id so that the result does not depend on the
/// order the journals were written in (a concurrent run appends in completion order).
pub(crate) fn pair_up<'a>(
    first: &'a [Judgement],
    second: &'a [Judgement],
) -> Result<Vec<Pair<'a>>, ScoreError> {
    let first = by_id(first, "first")?;
    let mut second = by_id(second, "second")?;
    let mut pairs = Vec::with_capacity(first.len());
    for (id, a) in first {
        let b = second.remove(id).ok_or_else(|| ScoreError::UnpairedId {
            id: id.to_string(),
            present_in: "first",
        })?;
        if a.task != b.task {
            return Err(ScoreError::PairMismatch {
                id: id.to_string(),
                field: "task",
                first: a.task.clone(),
                second: b.task.clone(),
            });
        }
        if a.label != b.label {
            return Err(ScoreError::PairMismatch {
                id: id.to_string(),
                field: "label",
                first: a.label.to_string(),
                second: b.label.to_string(),
            });
        }
        pairs.push(Pair {
            id,
            task: &a.task,
            label: a.label,
            first_correct: a.is_correct(),
            second_correct: b.is_correct(),
            first_p_fail: a.p_fail,
            second_p_fail: b.p_fail,
        });
    }
    if let Some(id) = second.keys().next() {
        return Err(ScoreError::UnpairedId {
            id: id.to_string(),
            present_in: "second",
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::Verdict;

    fn judgement(id: &str, task: &str, label: Label, verdict: Verdict) -> Judgement {
        Judgement::new(id, task, label, verdict)
    }

    #[test]
    fn pairs_are_matched_by_id_whatever_the_order() {
        use Label::*;
        let first = vec![
            judgement("b", "DROP", Fail, Verdict::Fail),
            judgement("a", "DROP", Pass, Verdict::Invalid),
        ];
        let second = vec![
            judgement("a", "DROP", Pass, Verdict::Pass),
            judgement("b", "DROP", Fail, Verdict::Pass),
        ];
        let pairs = pair_up(&first, &second).expect("paired");
        let summary: Vec<(&str, bool, bool)> = pairs
            .iter()
            .map(|p| (p.id, p.first_correct, p.second_correct))
            .collect();
        assert_eq!(summary, [("a", false, true), ("b", true, false)]);
    }

    #[test]
    fn mismatched_runs_are_errors() {
        use Label::*;
        let a = judgement("a", "DROP", Pass, Verdict::Pass);
        let b = judgement("b", "DROP", Pass, Verdict::Pass);
        assert!(matches!(
            pair_up(&[a.clone(), a.clone()], std::slice::from_ref(&a)),
            Err(ScoreError::DuplicateId { judge: "first", .. })
        ));
        assert!(matches!(
            pair_up(std::slice::from_ref(&a), &[a.clone(), b.clone()]),
            Err(ScoreError::UnpairedId {
                present_in: "second",
                ..
            })
        ));
        assert!(matches!(
            pair_up(&[a.clone(), b.clone()], std::slice::from_ref(&a)),
            Err(ScoreError::UnpairedId {
                present_in: "first",
                ..
            })
        ));
        let relabelled = judgement("a", "DROP", Fail, Verdict::Pass);
        assert!(matches!(
            pair_up(&[a], &[relabelled]),
            Err(ScoreError::PairMismatch { field: "label", .. })
        ));
    }
}
