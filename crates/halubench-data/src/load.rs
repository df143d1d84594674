//! Reading a dataset file with polars and turning it into validated examples.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use halubench_core::{Example, Label};
use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::DataError;
use crate::registry::{COLUMNS, Format};

/// The bytes of a dataset file and their digest.
#[derive(Debug)]
pub(crate) struct FileBytes {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl FileBytes {
    pub fn read(path: &Path) -> Result<FileBytes, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Ok(FileBytes::new(path.to_path_buf(), bytes))
    }

    pub fn new(path: PathBuf, bytes: Vec<u8>) -> FileBytes {
        let sha256 = sha256_hex(&bytes);
        FileBytes {
            path,
            bytes,
            sha256,
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses the file in `format` and validates every row against HaluBench's schema.
/// `columns` maps HaluBench's column names to the file's where they differ.
pub(crate) fn parse_examples(
    file: &FileBytes,
    format: Format,
    columns: &std::collections::BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Example>, DataError> {
    let path = &file.path;
    if file.bytes.is_empty() {
        return Err(DataError::EmptyFile { path: path.clone() });
    }
    let frame = read_frame(file, format)?;
    if frame.height() == 0 {
        return Err(DataError::NoRows { path: path.clone() });
    }
    to_examples(&frame, path, columns, warnings)
}

fn read_frame(file: &FileBytes, format: Format) -> Result<DataFrame, DataError> {
    let cursor = Cursor::new(file.bytes.as_slice());
    let parse_error = |e: PolarsError| DataError::Parse {
        path: file.path.clone(),
        format: format.name(),
        message: e.to_string(),
    };
    match format {
        Format::Parquet => {
            // Checked here because polars' own message for a foreign file is obscure.
            let magic = b"PAR1";
            if file.bytes.len() < 8
                || !file.bytes.starts_with(magic)
                || !file.bytes.ends_with(magic)
            {
                return Err(DataError::NotParquet {
                    path: file.path.clone(),
                });
            }
            ParquetReader::new(cursor).finish().map_err(parse_error)
        }
        Format::Jsonl => JsonReader::new(cursor)
            .with_json_format(JsonFormat::JsonLines)
            .infer_schema_len(None)
            .finish()
            .map_err(parse_error),
        // Every CSV column is read as text: type inference would turn numeric ids into
        // integers, and our schema is all strings anyway.
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(cursor)
            .finish()
            .map_err(parse_error),
    }
}

fn to_examples(
    frame: &DataFrame,
    path: &Path,
    mapping: &std::collections::BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Example>, DataError> {
    let found: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut columns = Vec::with_capacity(COLUMNS.len());
    for name in COLUMNS {
        let actual = mapping.get(name).map_or(name, String::as_str);
        let column = frame.column(actual).map_err(|_| DataError::MissingColumn {
            path: path.to_path_buf(),
            column: actual.to_string(),
            mapped_from: mapping.get(name).map(|_| name.to_string()),
            found: found.clone(),
        })?;
        let strings = column.str().map_err(|_| DataError::WrongType {
            path: path.to_path_buf(),
            column: actual.to_string(),
            found: column.dtype().to_string(),
        })?;
        columns.push((actual, strings));
    }
    let [id, passage, question, answer, label, task] = [0, 1, 2, 3, 4, 5].map(|i| &columns[i]);

    let mut examples = Vec::with_capacity(frame.height());
    let mut seen: HashMap<&str, (usize, usize)> = HashMap::with_capacity(frame.height());
    // Every id the file uses, wherever it appears, and every id a repeat was renamed to: a
    // renamed repeat takes none of them, so a real row keeps its own id whatever the order.
    let file_ids: HashSet<&str> = id.1.iter().flatten().collect();
    let mut renamed: HashSet<String> = HashSet::new();
    // Per repeated id, the suffix to try next: smaller ones were all taken when last looked,
    // and taken ids stay taken.
    let mut next_suffix: HashMap<&str, usize> = HashMap::new();
    let mut iters = [id, passage, question, answer, label, task].map(|(_, c)| c.iter());
    for index in 0..frame.height() {
        let row = index + 1;
        let values = iters.each_mut().map(|it| it.next().flatten());
        let row_id = values[0].map(str::to_string);
        let check = |i: usize| -> Result<&str, DataError> {
            let column = columns[i].0.to_string();
            match values[i] {
                None => Err(DataError::NullValue {
                    path: path.to_path_buf(),
                    column,
                    row,
                    id: row_id.clone(),
                }),
                Some(text) if text.trim().is_empty() => Err(DataError::EmptyValue {
                    path: path.to_path_buf(),
                    column,
                    row,
                    id: row_id.clone(),
                }),
                Some(text) => Ok(text),
            }
        };
        let id = check(0)?;
        let passage = check(1)?;
        let question = check(2)?;
        let answer = check(3)?;
        let label = check(4)?;
        let task = check(5)?;
        let label = Label::parse(label).ok_or_else(|| DataError::BadLabel {
            path: path.to_path_buf(),
            row,
            id: Some(id.to_string()),
            value: label.to_string(),
        })?;
        let mut example = Example {
            id: id.to_string(),
            task: task.to_string(),
            passage: passage.to_string(),
            question: question.to_string(),
            answer: answer.to_string(),
            label,
        };
        if let Some(&(first_row, first_index)) = seen.get(id) {
            // An exact repeat is a quirk of the data (HaluBench has some), not a conflict:
            // both rows count, as in the paper, under ids that stay unique.
            if examples[first_index] != example {
                return Err(DataError::DuplicateId {
                    path: path.to_path_buf(),
                    id: id.to_string(),
                    first_row,
                    row,
                });
            }
            let suffix = next_suffix.entry(id).or_insert(2);
            let unique = loop {
                let candidate = format!("{id}#{suffix}");
                *suffix += 1;
                if !file_ids.contains(candidate.as_str()) && !renamed.contains(&candidate) {
                    break candidate;
                }
            };
            renamed.insert(unique.clone());
            example.id = unique;
            warnings.push(format!(
                "{}: row {row} repeats row {first_row} exactly (id {id:?}); both are kept, this one as id {:?}",
                path.display(),
                example.id
            ));
        } else {
            seen.insert(id, (row, examples.len()));
        }
        examples.push(example);
    }
    Ok(examples)
}
