//! Choosing which examples a run judges: `--tasks`, `--limit` per task, `--seed`.

use std::collections::{BTreeMap, BTreeSet};

use halubench_core::Example;
use sha2::{Digest, Sha256};

use crate::DataError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectOptions {
    /// Keep only these tasks (`source_ds` values, exact spelling); empty keeps all.
    pub tasks: Vec<String>,
    /// At most this many examples per task.
    pub limit: Option<usize>,
    pub seed: u64,
}

/// Filters and samples `examples`, keeping the dataset's order.
///
/// The sample of each task is the `limit` examples with the smallest
/// `sha256(seed, id)`. An example's chance of selection therefore depends only on its own
/// id and the seed: reordering the file, or adding rows to another task, never changes
/// which examples a given seed picks, and a larger limit always extends a smaller one.
pub fn select(examples: Vec<Example>, options: &SelectOptions) -> Result<Vec<Example>, DataError> {
    let available: BTreeSet<&str> = examples.iter().map(|e| e.task.as_str()).collect();
    for task in &options.tasks {
        if !available.contains(task.as_str()) {
            let hint = available
                .iter()
                .find(|a| a.eq_ignore_ascii_case(task))
                .map(|a| format!(" (task names are case-sensitive: did you mean `{a}`?)"))
                .unwrap_or_default();
            return Err(DataError::UnknownTask {
                task: task.clone(),
                available: available.iter().map(|s| s.to_string()).collect(),
                hint,
            });
        }
    }
    let wanted = |e: &Example| options.tasks.is_empty() || options.tasks.contains(&e.task);
    let Some(limit) = options.limit else {
        return Ok(examples.into_iter().filter(wanted).collect());
    };

    let mut keys_by_task: BTreeMap<&str, Vec<([u8; 32], usize)>> = BTreeMap::new();
    for (index, example) in examples.iter().enumerate().filter(|(_, e)| wanted(e)) {
        keys_by_task
            .entry(&example.task)
            .or_default()
            .push((sample_key(options.seed, &example.id), index));
    }
    let mut keep = vec![false; examples.len()];
    for keys in keys_by_task.values_mut() {
        keys.sort_unstable();
        for (_, index) in keys.iter().take(limit) {
            keep[*index] = true;
        }
    }
    Ok(examples
        .into_iter()
        .zip(keep)
        .filter_map(|(example, kept)| kept.then_some(example))
        .collect())
}

fn sample_key(seed: u64, id: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(id.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use halubench_core::Label;

    fn example(id: &str, task: &str) -> Example {
        Example {
            id: id.to_string(),
            task: task.to_string(),
            passage: "p".into(),
            question: "q".into(),
            answer: "a".into(),
            label: Label::Pass,
        }
    }

    fn dataset() -> Vec<Example> {
        (0..50)
            .map(|i| {
                example(
                    &format!("id{i}"),
                    if i % 2 == 0 { "DROP" } else { "covidQA" },
                )
            })
            .collect()
    }

    fn ids(examples: &[Example]) -> Vec<&str> {
        examples.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn limit_is_per_task_and_deterministic() {
        let options = SelectOptions {
            limit: Some(5),
            seed: 7,
            ..Default::default()
        };
        let a = select(dataset(), &options).expect("select");
        let b = select(dataset(), &options).expect("select");
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.iter().filter(|e| e.task == "DROP").count(), 5);
        assert_eq!(a.iter().filter(|e| e.task == "covidQA").count(), 5);
        let other_seed = select(
            dataset(),
            &SelectOptions {
                seed: 8,
                ..options.clone()
            },
        )
        .expect("select");
        assert_ne!(ids(&a), ids(&other_seed), "the seed must matter");
    }

    #[test]
    fn sample_ignores_row_order_and_grows_monotonically() {
        let options = SelectOptions {
            limit: Some(4),
            seed: 1,
            ..Default::default()
        };
        let forward = select(dataset(), &options).expect("select");
        let mut reversed_input = dataset();
        reversed_input.reverse();
        let mut backward: Vec<String> = select(reversed_input, &options)
            .expect("select")
            .into_iter()
            .map(|e| e.id)
            .collect();
        backward.reverse();
        assert_eq!(ids(&forward), backward);

        let bigger = select(
            dataset(),
            &SelectOptions {
                limit: Some(8),
                ..options
            },
        )
        .expect("select");
        assert!(forward.iter().all(|e| bigger.contains(e)));
    }

    #[test]
    fn tasks_filter_and_unknown_task_hint() {
        let only = select(
            dataset(),
            &SelectOptions {
                tasks: vec!["DROP".into()],
                ..Default::default()
            },
        )
        .expect("select");
        assert_eq!(only.len(), 25);
        assert!(only.iter().all(|e| e.task == "DROP"));

        let err = select(
            dataset(),
            &SelectOptions {
                tasks: vec!["covidqa".into()],
                ..Default::default()
            },
        )
        .expect_err("wrong case");
        let msg = err.to_string();
        assert!(msg.contains("did you mean `covidQA`"), "{msg}");
    }
}
