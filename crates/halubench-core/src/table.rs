//! The one table model every report uses: cells as finished strings, rendered as markdown and
//! CSV here and as HTML by halubench-report. Cells are data (task names, judge names, model
//! names come from users and datasets), so every rendering escapes them.

use serde::Serialize;

/// A table of finished strings; rows may be shorter or longer than the header.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Cell texts, row by row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: impl IntoIterator<Item = impl Into<String>>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: impl IntoIterator<Item = impl Into<String>>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    /// The first column left-aligned, the others right. Every cell is shown as written:
    /// see [`markdown_cell`].
    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| markdown_cell(c)).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = line(&self.header);
        let align: Vec<&str> = (0..self.header.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        out.push_str(&format!("|{}|\n", align.join("|")));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// The header then the rows as CSV (RFC 4180 quoting where a cell needs it, `\n` line
    /// ends): a cell with a comma, a quote or a line break stays one cell.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        let written = std::iter::once(&self.header)
            .chain(&self.rows)
            .try_for_each(|record| writer.write_record(record));
        // Strings into memory: writing cannot fail, and what comes out is UTF-8.
        let bytes = match (written, writer.into_inner()) {
            (Ok(()), Ok(bytes)) => bytes,
            _ => Vec::new(),
        };
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// One cell's text as markdown that shows it as written and keeps the table row intact:
/// `|` cannot end the cell, `` ` ``, `<` and `&` start no code span, HTML or entity, `\`
/// escapes nothing after it, and a line break (`\n`, `\r\n` or `\r`) is a `<br>` rather than
/// the end of the row. Text without those characters is unchanged.
pub fn markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '|' | '`' | '<' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_align_numbers_and_escape_pipes() {
        let mut table = Table::new(["judge", "acc"]);
        table.push(["a|b", "81.0"]);
        assert_eq!(
            table.to_markdown(),
            "| judge | acc |\n|---|---:|\n| a\\|b | 81.0 |\n"
        );
    }

    #[test]
    fn markdown_cells_are_data_on_one_line() {
        assert_eq!(
            markdown_cell("HaluEval [1.0, 2.0] -"),
            "HaluEval [1.0, 2.0] -"
        );
        assert_eq!(
            markdown_cell("a|b\\`c`<b>&amp;"),
            "a\\|b\\\\\\`c\\`\\<b>\\&amp;"
        );
        assert_eq!(markdown_cell("1\n2\r\n3\r4"), "1<br>2<br>3<br>4");
    }

    #[test]
    fn csv_quotes_only_the_cells_that_need_it() {
        let mut table = Table::new(["judge", "a,\"b\"\nc"]);
        table.push(["x", "81.0"]);
        assert_eq!(table.to_csv(), "judge,\"a,\"\"b\"\"\nc\"\nx,81.0\n");
    }
}
