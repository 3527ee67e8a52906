//! A table printed aligned on the terminal and as Markdown for the README.

pub(super) struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                if i < w.len() {
                    w[i] = w[i].max(c.chars().count());
                }
            }
        }
        w
    }

    /// Aligned text: the first column left-aligned, the others right-aligned.
    pub(super) fn text(&self) -> String {
        let w = self.widths();
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let width = w.get(i).copied().unwrap_or(0);
                    if i == 0 {
                        format!("{c:<width$}")
                    } else {
                        format!("{c:>width$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut out = format!("{}\n", self.title);
        out.push_str(&line(&self.headers));
        out.push('\n');
        out.push_str(&"-".repeat(w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1)));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    pub(super) fn markdown(&self) -> String {
        let mut out = format!("{}\n\n", self.title);
        out.push_str(&format!("| {} |\n", self.headers.join(" | ")));
        let align: Vec<&str> = (0..self.headers.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        out.push_str(&format!("|{}|\n", align.join("|")));
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn renders_text_and_markdown() {
        let mut t = Table::new("T", &["a", "bb"]);
        t.row(vec!["xyz".to_owned(), "1".to_owned()]);
        assert_eq!(t.text(), "T\na    bb\n-------\nxyz   1\n");
        assert_eq!(t.markdown(), "T\n\n| a | bb |\n|---|---:|\n| xyz | 1 |\n");
    }
}
