//! Several judges' verdicts on the same examples, read as votes: the verdict of a panel of
//! judges, and the examples whose gold label most judges contradict (label noise to look at;
//! HaluBench has known noisy labels in DROP, RAGTruth and halueval).
//!
//! An INVALID verdict is a vote for nothing: it stays in the count of judges, so it can keep
//! a side from its majority, but it never counts for or against a label.

use std::collections::HashMap;

use halubench_core::{Judgement, Label, Verdict};

/// The strict majority of `votes` (more than half of all of them, INVALID ones included),
/// or `None` when no verdict has one. INVALID itself never wins.
pub fn strict_majority(votes: &[Verdict]) -> Option<Verdict> {
    [Verdict::Pass, Verdict::Fail]
        .into_iter()
        .find(|&side| 2 * votes.iter().filter(|&&v| v == side).count() > votes.len())
}

/// An example whose gold label a strict majority of the judges contradict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspectLabel {
    pub id: String,
    pub task: String,
    pub label: Label,
    /// Judges whose verdict is the opposite of the label.
    pub against: usize,
    /// All judges, INVALID verdicts included.
    pub judges: usize,
}

/// The examples where a strict majority of the runs give the opposite verdict of the gold
/// label, in the first run's order. Each run is one judge's latest judgement per example;
/// an example some run lacks is judged by the runs that have it.
pub fn suspect_labels(runs: &[&[Judgement]]) -> Vec<SuspectLabel> {
    let Some((first, rest)) = runs.split_first() else {
        return Vec::new();
    };
    let others: Vec<HashMap<&str, &Judgement>> = rest
        .iter()
        .map(|run| run.iter().map(|j| (j.id.as_str(), j)).collect())
        .collect();
    first
        .iter()
        .filter_map(|judgement| {
            let votes: Vec<Verdict> = std::iter::once(judgement.verdict)
                .chain(
                    others
                        .iter()
                        .filter_map(|run| run.get(judgement.id.as_str()).map(|j| j.verdict)),
                )
                .collect();
            let opposite = match judgement.label {
                Label::Pass => Verdict::Fail,
                Label::Fail => Verdict::Pass,
            };
            let against = votes.iter().filter(|&&v| v == opposite).count();
            (2 * against > votes.len()).then(|| SuspectLabel {
                id: judgement.id.clone(),
                task: judgement.task.clone(),
                label: judgement.label,
                against,
                judges: votes.len(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Fail as F, Invalid as I, Pass as P};

    #[test]
    fn a_majority_is_more_than_half_of_all_votes_invalid_ones_included() {
        assert_eq!(strict_majority(&[P, P, F]), Some(P));
        assert_eq!(strict_majority(&[P, F]), None);
        assert_eq!(strict_majority(&[P, I]), None, "INVALID stays in the count");
        assert_eq!(strict_majority(&[P, P, I]), Some(P));
        assert_eq!(
            strict_majority(&[F, F, I, P]),
            None,
            "2 of 4 is no majority"
        );
        assert_eq!(strict_majority(&[I, I, I]), None);
        assert_eq!(strict_majority(&[]), None);
    }

    #[test]
    fn a_label_is_suspect_when_most_judges_say_the_opposite() {
        let run = |verdicts: [Verdict; 3]| -> Vec<Judgement> {
            let labels = [Label::Pass, Label::Fail, Label::Pass];
            (0..3)
                .map(|i| Judgement::new(format!("e{i}"), "DROP", labels[i], verdicts[i]))
                .collect()
        };
        // e0 (PASS): F, F, P -> suspect, 2 of 3. e1 (FAIL): P, I, P -> suspect, 2 of 3.
        // e2 (PASS): F, I, I -> one vote against of 3: not suspect.
        let runs = [run([F, P, F]), run([F, I, I]), run([P, P, I])];
        let views: Vec<&[Judgement]> = runs.iter().map(Vec::as_slice).collect();
        let suspects = suspect_labels(&views);
        let found: Vec<(&str, usize, usize)> = suspects
            .iter()
            .map(|s| (s.id.as_str(), s.against, s.judges))
            .collect();
        assert_eq!(found, vec![("e0", 2, 3), ("e1", 2, 3)]);
        assert!(suspect_labels(&[]).is_empty());
    }
}
