//! Exact repeats kept under renamed ids (`a#2`, `a#3`, ...) that never take an id a real row
//! of the file uses, whichever comes first, nor one an earlier rename took.

use std::collections::HashSet;

use crate::files::{self, GOOD, Row};
use crate::load_file;
use halubench_data::Dataset;

const HEADER: [&str; 6] = ["id", "passage", "question", "answer", "label", "source_ds"];

/// `GOOD[0]` (id `a`).
const A: Row<'static> = GOOD[0];

/// A real row whose own id is `a#2`, unlike `A` in everything but the passage.
const A2: Row<'static> = (
    "a#2",
    "Berlin is the capital of Germany.",
    "What is the capital of Germany?",
    "Berlin",
    "PASS",
    "halueval",
);

/// A real row whose own id is `a#3`.
const A3: Row<'static> = (
    "a#3",
    "Rome is the capital of Italy.",
    "What is the capital of Italy?",
    "Milan",
    "FAIL",
    "halueval",
);

fn json_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn jsonl_line(r: &Row<'_>) -> String {
    let fields: Vec<String> = HEADER
        .iter()
        .zip([r.0, r.1, r.2, r.3, r.4, r.5])
        .map(|(k, v)| format!("{}: {}", json_string(k), json_string(v)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// The same rows loaded from a CSV file and from a JSONL file; both must agree.
fn load_both(rows: &[Row<'_>]) -> Dataset {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = files::write_csv(dir.path(), "rows.csv", &HEADER, rows);
    let lines: Vec<String> = rows.iter().map(jsonl_line).collect();
    let jsonl = files::write_jsonl(dir.path(), "rows.jsonl", &lines);
    let from_csv = load_file(&csv).expect("csv loads");
    let from_jsonl = load_file(&jsonl).expect("jsonl loads");
    assert_eq!(from_csv.examples, from_jsonl.examples);
    let strip = |d: &Dataset| -> Vec<String> {
        d.warnings
            .iter()
            .map(|w| w.replace("rows.csv", "FILE").replace("rows.jsonl", "FILE"))
            .collect()
    };
    assert_eq!(strip(&from_csv), strip(&from_jsonl));
    from_csv
}

fn ids(dataset: &Dataset) -> Vec<&str> {
    dataset.examples.iter().map(|e| e.id.as_str()).collect()
}

fn assert_unique(dataset: &Dataset) {
    let ids = ids(dataset);
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "ids not unique: {ids:?}");
}

/// The repeat warnings, in order, each checked to name the row and the id chosen.
fn assert_warnings(dataset: &Dataset, expected: &[(usize, usize, &str)]) {
    let repeats: Vec<&String> = dataset
        .warnings
        .iter()
        .filter(|w| w.contains("repeats row"))
        .collect();
    assert_eq!(repeats.len(), expected.len(), "{:?}", dataset.warnings);
    for (warning, (row, first, id)) in repeats.iter().zip(expected) {
        assert!(
            warning.contains(&format!("row {row} repeats row {first} "))
                && warning.contains(&format!("this one as id \"{id}\"")),
            "{warning}"
        );
    }
}

#[test]
fn a_repeat_before_a_real_row_of_the_renamed_id_takes_the_next_free_id() {
    let dataset = load_both(&[A, A, A2]);
    assert_eq!(ids(&dataset), ["a", "a#3", "a#2"]);
    assert_unique(&dataset);
    // The real `a#2` keeps its own id and its own content.
    assert_eq!(dataset.examples[2].passage, A2.1);
    assert_eq!(dataset.examples[1].passage, A.1);
    assert_warnings(&dataset, &[(2, 1, "a#3")]);
}

#[test]
fn a_repeat_after_a_real_row_of_the_renamed_id_takes_the_next_free_id() {
    let dataset = load_both(&[A2, A, A]);
    assert_eq!(ids(&dataset), ["a#2", "a", "a#3"]);
    assert_unique(&dataset);
    assert_eq!(dataset.examples[0].passage, A2.1);
    assert_warnings(&dataset, &[(3, 2, "a#3")]);
}

#[test]
fn three_copies_take_consecutive_ids() {
    let dataset = load_both(&[A, GOOD[1], A, A]);
    assert_eq!(ids(&dataset), ["a", "b", "a#2", "a#3"]);
    assert_unique(&dataset);
    assert_warnings(&dataset, &[(3, 1, "a#2"), (4, 1, "a#3")]);
}

#[test]
fn three_copies_skip_every_id_the_file_uses() {
    let dataset = load_both(&[A, A, A3, A2, A]);
    assert_eq!(ids(&dataset), ["a", "a#4", "a#3", "a#2", "a#5"]);
    assert_unique(&dataset);
    assert_warnings(&dataset, &[(2, 1, "a#4"), (5, 1, "a#5")]);
}

#[test]
fn a_repeated_real_row_whose_id_looks_renamed_is_still_a_repeat() {
    // `a#2` is a real id here and is itself repeated: its repeat gets an id of its own,
    // and the repeats of `a` skip `a#2`.
    let dataset = load_both(&[A2, A, A, A2, A]);
    assert_eq!(ids(&dataset), ["a#2", "a", "a#3", "a#2#2", "a#4"]);
    assert_unique(&dataset);
    assert_warnings(&dataset, &[(3, 2, "a#3"), (4, 1, "a#2#2"), (5, 2, "a#4")]);
    assert_eq!(dataset.examples[3].passage, A2.1);
}

#[test]
fn a_renamed_id_is_never_taken_twice() {
    // `a#2` repeats the real `a#2`, and `a` repeats `a`: neither rename may take the other's.
    // `a#2#2` is also a real id, so the repeat of `a#2` goes on to `a#2#3`.
    let a22: Row<'static> = ("a#2#2", "x", "y", "z", "PASS", "DROP");
    let dataset = load_both(&[A, A2, A2, a22, A, A]);
    assert_eq!(ids(&dataset), ["a", "a#2", "a#2#3", "a#2#2", "a#3", "a#4"]);
    assert_unique(&dataset);
}
