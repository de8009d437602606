//! The live view `plugboard dev` shows: one row per Connection (Ready, State, reason, when
//! its credentials expire), redrawn in place on a terminal, or a line per change when the
//! output is a pipe or a file. Authorization links are printed once each, to open.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use kube::ResourceExt;

use crate::api::Connection;

/// One Connection as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub ready: String,
    pub state: String,
    pub reason: String,
    pub expires: String,
}

impl Row {
    pub fn of(conn: &Connection) -> Self {
        let status = conn.status.as_ref();
        let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        let dash = || "-".to_owned();
        Row {
            name: format!(
                "{}/{}",
                conn.namespace().unwrap_or_default(),
                conn.name_any()
            ),
            ready: ready.map_or_else(dash, |c| c.status.to_string()),
            state: status
                .and_then(|s| s.state)
                .map_or_else(dash, |s| format!("{s:?}")),
            reason: ready.map_or_else(dash, |c| c.reason.to_string()),
            expires: status
                .and_then(|s| s.credentials_expire_at.clone())
                .unwrap_or_else(dash),
        }
    }

    fn cells(&self) -> [&str; 5] {
        [
            &self.name,
            &self.ready,
            &self.state,
            &self.reason,
            &self.expires,
        ]
    }

    /// The line printed for a change when the output is not a terminal.
    pub fn line(&self) -> String {
        format!(
            "Connection {}: Ready={} State={} Reason={} Expires={}",
            self.name, self.ready, self.state, self.reason, self.expires
        )
    }
}

const HEADER: [&str; 5] = ["CONNECTION", "READY", "STATE", "REASON", "EXPIRES"];

/// The table's lines, columns padded to their widest cell, as `kubectl get` prints.
pub fn render(rows: &[Row]) -> Vec<String> {
    let mut widths = HEADER.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.cells()) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("   ").trim_end().to_owned()
    };
    let mut out = vec![line(HEADER)];
    out.extend(rows.iter().map(|r| line(r.cells())));
    if rows.is_empty() {
        out.push("(no Connections yet)".to_owned());
    }
    out
}

/// What has been shown, so that only changes are printed.
#[derive(Default)]
pub struct View {
    terminal: bool,
    drawn: usize,
    rows: BTreeMap<String, Row>,
    links: BTreeSet<String>,
}

impl View {
    pub fn new(terminal: bool) -> Self {
        Self {
            terminal,
            ..Self::default()
        }
    }

    /// Shows the Connections as they are now.
    pub fn show(&mut self, connections: &[Connection]) {
        let rows: Vec<Row> = connections.iter().map(Row::of).collect();
        let mut out = String::new();
        for conn in connections {
            let url = conn
                .status
                .as_ref()
                .and_then(|s| s.authorization_url.clone());
            if let Some(url) = url
                && self.links.insert(url.clone())
            {
                let name = format!(
                    "{}/{}",
                    conn.namespace().unwrap_or_default(),
                    conn.name_any()
                );
                out.push_str(&format!("open to connect {name}: {url}\n"));
            }
        }
        if self.terminal {
            if self.drawn > 0 {
                // Up over the last table, then clear to the end of the screen.
                out.insert_str(0, &format!("\x1b[{}A\x1b[J", self.drawn));
            }
            let lines = render(&rows);
            self.drawn = lines.len();
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        } else {
            for row in &rows {
                if self.rows.get(&row.name) != Some(row) {
                    out.push_str(&row.line());
                    out.push('\n');
                }
            }
        }
        self.rows = rows.into_iter().map(|r| (r.name.clone(), r)).collect();
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let row = Row {
            name: "demo/echo".into(),
            ready: "True".into(),
            state: "Connected".into(),
            reason: "Connected".into(),
            expires: "-".into(),
        };
        assert_eq!(
            render(&[row]),
            [
                "CONNECTION   READY   STATE       REASON      EXPIRES",
                "demo/echo    True    Connected   Connected   -",
            ]
        );
        assert_eq!(render(&[])[1], "(no Connections yet)");
    }
}
