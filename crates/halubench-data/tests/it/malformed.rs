//! Bad input: every case must be an error that names the file and the row or column, and
//! none may panic.

use polars::prelude::*;

use crate::files::{self, GOOD, Row};
use crate::load_file;
use halubench_data::{DataError, SelectOptions};

fn parquet_with(rows: &[Row<'_>]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = files::write_parquet(dir.path(), "data.parquet", &mut files::frame(rows));
    (dir, path)
}

fn message(err: &DataError) -> String {
    err.to_string()
}

#[test]
fn good_parquet_loads() {
    let (_dir, path) = parquet_with(&GOOD);
    let dataset = load_file(&path).expect("good file");
    assert_eq!(dataset.examples.len(), 4);
    assert_eq!(dataset.examples[2].task, "DROP");
    assert_eq!(dataset.info.sha256.len(), 64);
}

#[test]
fn missing_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut frame = files::frame(&GOOD).drop("label").expect("drop");
    let path = files::write_parquet(dir.path(), "no-label.parquet", &mut frame);
    let err = load_file(&path).expect_err("missing column");
    assert!(
        matches!(&err, DataError::MissingColumn { column, .. } if column == "label"),
        "{err:?}"
    );
    let msg = message(&err);
    assert!(
        msg.contains("no-label.parquet") && msg.contains("`label`"),
        "{msg}"
    );
    assert!(msg.contains("source_ds"), "lists the columns found: {msg}");
}

#[test]
fn column_of_the_wrong_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut frame = files::frame(&GOOD);
    frame
        .with_column(Column::new("label".into(), [1i64, 0, 1, 0]))
        .expect("replace");
    let path = files::write_parquet(dir.path(), "int-label.parquet", &mut frame);
    let err = load_file(&path).expect_err("wrong type");
    let msg = message(&err);
    assert!(matches!(err, DataError::WrongType { .. }), "{msg}");
    assert!(
        msg.contains("int-label.parquet") && msg.contains("`label`") && msg.contains("i64"),
        "{msg}"
    );
}

#[test]
fn label_other_than_pass_or_fail() {
    let mut rows = GOOD;
    rows[2].4 = "pass";
    let (_dir, path) = parquet_with(&rows);
    let err = load_file(&path).expect_err("bad label");
    let msg = message(&err);
    assert!(matches!(err, DataError::BadLabel { row: 3, .. }), "{msg}");
    assert!(
        msg.contains("row 3") && msg.contains("\"c\"") && msg.contains("\"pass\""),
        "{msg}"
    );
}

#[test]
fn null_passage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut frame = files::frame(&GOOD);
    frame
        .with_column(Column::new(
            "passage".into(),
            [Some("p"), Some("p"), None, Some("p")],
        ))
        .expect("replace");
    let path = files::write_parquet(dir.path(), "null.parquet", &mut frame);
    let err = load_file(&path).expect_err("null");
    let msg = message(&err);
    assert!(matches!(err, DataError::NullValue { row: 3, .. }), "{msg}");
    assert!(
        msg.contains("`passage`") && msg.contains("row 3") && msg.contains("\"c\""),
        "{msg}"
    );
}

#[test]
fn blank_question() {
    let mut rows = GOOD;
    rows[1].2 = "  \n ";
    let (_dir, path) = parquet_with(&rows);
    let err = load_file(&path).expect_err("blank");
    let msg = message(&err);
    assert!(matches!(err, DataError::EmptyValue { row: 2, .. }), "{msg}");
    assert!(msg.contains("`question`") && msg.contains("\"b\""), "{msg}");
}

#[test]
fn empty_answer() {
    let mut rows = GOOD;
    rows[3].3 = "";
    let (_dir, path) = parquet_with(&rows);
    let msg = message(&load_file(&path).expect_err("empty answer"));
    assert!(
        msg.contains("`answer` is empty") && msg.contains("row 4"),
        "{msg}"
    );
}

#[test]
fn duplicate_id_with_different_content() {
    let mut rows = GOOD;
    rows[3].0 = "a";
    let (_dir, path) = parquet_with(&rows);
    let err = load_file(&path).expect_err("duplicate");
    let msg = message(&err);
    assert!(
        matches!(
            err,
            DataError::DuplicateId {
                first_row: 1,
                row: 4,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("\"a\"") && msg.contains("rows 1 and 4"),
        "{msg}"
    );
}

#[test]
fn an_exact_repeat_is_kept_under_a_unique_id() {
    let rows = [GOOD[0], GOOD[1], GOOD[0]];
    let (_dir, path) = parquet_with(&rows);
    let dataset = load_file(&path).expect("exact repeats load");
    let ids: Vec<&str> = dataset.examples.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "a#2"]);
    assert_eq!(dataset.warnings.len(), 1);
    assert!(
        dataset.warnings[0].contains("row 3 repeats row 1"),
        "{:?}",
        dataset.warnings
    );
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.parquet");
    std::fs::write(&path, b"").expect("write");
    let err = load_file(&path).expect_err("empty");
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err:?}");
    assert!(message(&err).contains("empty.parquet"));
}

#[test]
fn parquet_with_no_rows() {
    let (_dir, path) = parquet_with(&[]);
    let err = load_file(&path).expect_err("no rows");
    assert!(matches!(err, DataError::NoRows { .. }), "{err:?}");
}

#[test]
fn file_that_is_not_parquet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("actually-csv.parquet");
    std::fs::write(&path, "id,passage\n1,2\n").expect("write");
    let err = load_file(&path).expect_err("not parquet");
    assert!(matches!(err, DataError::NotParquet { .. }), "{err:?}");
    assert!(message(&err).contains("actually-csv.parquet"));
}

#[test]
fn truncated_parquet_is_an_error_not_a_panic() {
    let (dir, path) = parquet_with(&GOOD);
    let bytes = std::fs::read(&path).expect("read");
    // Keep the magic at both ends but lose the middle, as a broken copy might.
    let mut broken = bytes[..bytes.len() / 2].to_vec();
    broken.extend_from_slice(&bytes[bytes.len() - 8..]);
    let broken_path = dir.path().join("broken.parquet");
    std::fs::write(&broken_path, broken).expect("write");
    let err = load_file(&broken_path).expect_err("truncated");
    assert!(matches!(err, DataError::Parse { .. }), "{err:?}");
    assert!(message(&err).contains("broken.parquet"));
}

#[test]
fn unknown_task_in_selection() {
    let (_dir, path) = parquet_with(&GOOD);
    let dataset = load_file(&path).expect("good");
    let err = halubench_data::select(
        dataset.examples,
        &SelectOptions {
            tasks: vec!["DROP".into(), "FinanceBench".into()],
            ..Default::default()
        },
    )
    .expect_err("unknown task");
    let msg = message(&err);
    assert!(
        msg.contains("`FinanceBench`") && msg.contains("DROP, halueval"),
        "{msg}"
    );
}

#[test]
fn unknown_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.txt");
    std::fs::write(&path, "x").expect("write");
    let err = load_file(&path).expect_err("unknown format");
    assert!(matches!(err, DataError::UnknownFormat { .. }), "{err:?}");
}

#[test]
fn jsonl_with_a_numeric_label() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = |label: &str| {
        format!(
            r#"{{"id":"x{label}","passage":"p","question":"q","answer":"a","label":{label},"source_ds":"DROP"}}"#
        )
    };
    let path = files::write_jsonl(dir.path(), "n.jsonl", &[line("1"), line("0")]);
    let msg = message(&load_file(&path).expect_err("numeric label"));
    assert!(
        msg.contains("n.jsonl") && msg.contains("`label`") && msg.contains("expected string"),
        "{msg}"
    );
}

#[test]
fn jsonl_that_is_not_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = files::write_jsonl(dir.path(), "bad.jsonl", &["{\"id\": \"a\",".to_string()]);
    let err = load_file(&path).expect_err("broken json");
    assert!(
        matches!(
            err,
            DataError::Parse {
                format: "jsonl",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn csv_row_with_missing_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ragged.csv");
    std::fs::write(
        &path,
        "id,passage,question,answer,label,source_ds\na,p,q,x,PASS,DROP\nb,p,q\n",
    )
    .expect("write");
    // polars fills missing trailing fields with null; the null check names the row.
    let msg = message(&load_file(&path).expect_err("ragged"));
    assert!(msg.contains("ragged.csv") && msg.contains("row 2"), "{msg}");
}
