//! The manifests to check: files, folders (their `.yaml`, `.yml` and `.json` files, sorted,
//! as `kubectl apply -f DIR` takes them) and standard input, split into documents, with a
//! `kind: List` expanded into its items.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::lines::Lines;

/// One object from one document, with where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file as given (`-` reads as `<stdin>`).
    pub file: String,
    pub value: Value,
    pub lines: Lines,
    /// Field paths of `lines` start under this prefix (`items[2]` for an item of a List).
    pub prefix: String,
}

impl Document {
    pub fn line(&self, field: &str) -> usize {
        if self.prefix.is_empty() {
            self.lines.of(field)
        } else if field.is_empty() {
            self.lines.of(&self.prefix)
        } else {
            self.lines.of(&format!("{}.{field}", self.prefix))
        }
    }

    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
}

/// A document that could not be read: the file, the line, and why.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Everything read from the paths given.
#[derive(Debug, Default)]
pub struct Read {
    pub documents: Vec<Document>,
    pub unreadable: Vec<Unreadable>,
}

/// Reads every path; a path that cannot be read at all is an error for the caller.
pub fn read(paths: &[PathBuf]) -> Result<Read, std::io::Error> {
    let mut out = Read::default();
    for path in paths {
        if path == Path::new("-") {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            split("<stdin>", &text, &mut out);
            continue;
        }
        for file in files(path)? {
            let text = std::fs::read_to_string(&file).map_err(|err| {
                std::io::Error::new(err.kind(), format!("{}: {err}", file.display()))
            })?;
            split(&file.display().to_string(), &text, &mut out);
        }
    }
    Ok(out)
}

/// A file, or a folder's manifest files, recursively, in name order.
fn files(path: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let meta = std::fs::metadata(path)
        .map_err(|err| std::io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut found = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            found.extend(files(&entry)?);
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            found.push(entry);
        }
    }
    Ok(found)
}

/// Splits a stream at `---` lines (as kubectl does) and reads each document.
fn split(file: &str, text: &str, out: &mut Read) {
    let mut start = 0;
    let mut chunk = String::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") && (line.len() == 3 || line[3..].starts_with([' ', '\t'])) {
            document(file, &chunk, start, out);
            chunk.clear();
            start = i + 1;
        } else {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    document(file, &chunk, start, out);
}

fn document(file: &str, text: &str, offset: usize, out: &mut Read) {
    let value: Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            let line = err.location().map_or(1, |l| l.line()) + offset;
            out.unreadable.push(Unreadable {
                file: file.to_owned(),
                line,
                message: format!("not valid YAML: {err}"),
            });
            return;
        }
    };
    // Empty and comment-only documents are nothing to apply.
    if value.is_null() {
        return;
    }
    let lines = Lines::read(text, offset);
    let list =
        value["kind"].as_str().is_some_and(|k| k.ends_with("List")) && value["items"].is_array();
    if list {
        for (i, item) in value["items"].as_array().into_iter().flatten().enumerate() {
            out.documents.push(Document {
                file: file.to_owned(),
                value: item.clone(),
                lines: lines.clone(),
                prefix: format!("items[{i}]"),
            });
        }
        return;
    }
    out.documents.push(Document {
        file: file.to_owned(),
        value,
        lines,
        prefix: String::new(),
    });
}
