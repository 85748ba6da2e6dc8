//! A table of results written two ways: as a CSV file (one header line, RFC 4180 quoting) for
//! further analysis, and as a Markdown table for the report. Cells are strings; the
//! experiments format their numbers.

use std::path::Path;

use crate::error::ExperimentError;

/// Rows under a header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The CSV text.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = line.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// Writes the CSV text to `path`.
    pub fn write_csv(&self, path: &Path) -> Result<(), ExperimentError> {
        std::fs::write(path, self.to_csv()).map_err(|e| ExperimentError::io(path, e))
    }

    /// The Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| {
            let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", escaped.join(" | "))
        };
        out.push_str(&line(&self.header));
        out.push_str(&format!(
            "|{}\n",
            self.header.iter().map(|_| "---|").collect::<String>()
        ));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed_and_markdown_escapes_pipes() {
        let mut table = Table::new(&["name", "value"]);
        table.push(vec!["a,b".into(), "1".into()]);
        table.push(vec!["say \"hi\"".into(), "x|y".into()]);
        assert_eq!(
            table.to_csv(),
            "name,value\n\"a,b\",1\n\"say \"\"hi\"\"\",x|y\n"
        );
        let md = table.to_markdown();
        assert!(md.starts_with("| name | value |\n|---|---|\n"));
        assert!(md.contains("x\\|y"));
    }
}
