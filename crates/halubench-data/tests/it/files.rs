//! Writing small datasets in each supported format.

use std::path::{Path, PathBuf};

use polars::prelude::*;

/// One row as (id, passage, question, answer, label, source_ds).
pub type Row<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

pub const GOOD: [Row<'static>; 4] = [
    (
        "a",
        "Paris is the capital of France.",
        "What is the capital of France?",
        "Paris",
        "PASS",
        "halueval",
    ),
    (
        "b",
        "Paris is the capital of France.",
        "What is the capital of France?",
        "Lyon",
        "FAIL",
        "halueval",
    ),
    (
        "c",
        "The game ended 21 to 14.",
        "How many points were scored?",
        "35",
        "PASS",
        "DROP",
    ),
    (
        "d",
        "The game ended 21 to 14.",
        "How many points were scored?",
        "36",
        "FAIL",
        "DROP",
    ),
];

pub fn frame(rows: &[Row<'_>]) -> DataFrame {
    let col = |i: usize| -> Vec<&str> {
        rows.iter()
            .map(|r| [r.0, r.1, r.2, r.3, r.4, r.5][i])
            .collect()
    };
    df!(
        "id" => col(0),
        "passage" => col(1),
        "question" => col(2),
        "answer" => col(3),
        "label" => col(4),
        "source_ds" => col(5),
    )
    .expect("frame")
}

pub fn write_parquet(dir: &Path, name: &str, frame: &mut DataFrame) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).expect("create");
    ParquetWriter::new(&mut file)
        .finish(frame)
        .expect("write parquet");
    path
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn write_csv(dir: &Path, name: &str, header: &[&str], rows: &[Row<'_>]) -> PathBuf {
    let mut text = header.join(",") + "\n";
    for r in rows {
        let fields = [r.0, r.1, r.2, r.3, r.4, r.5].map(csv_field);
        text += &(fields.join(",") + "\n");
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write csv");
    path
}

pub fn write_jsonl(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write jsonl");
    path
}
