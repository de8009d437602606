//! Where each field of a YAML document sits, so a problem found in the parsed value can be
//! reported at its line. Paths are written as the API server writes field paths:
//! `spec.inputFrom[0].secretKeyRef.name`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

/// Line (1-based, in the file) of each field path of one document.
#[derive(Debug, Default, Clone)]
pub struct Lines {
    at: HashMap<String, usize>,
    /// The document's first line, for problems with the whole object.
    first: usize,
}

enum Frame {
    /// A mapping at `path`; `key` is the key whose value comes next.
    Map { path: String, key: Option<String> },
    /// A sequence at `path`; `next` is the index of the next item.
    Seq { path: String, next: usize },
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Lines {
    /// Reads one document's text; `offset` is the number of file lines before it. A text that
    /// does not parse gives a map with only the first line (the parse error is reported by
    /// whoever reads the value).
    pub fn read(text: &str, offset: usize) -> Self {
        let mut lines = Lines {
            at: HashMap::new(),
            first: offset + 1,
        };
        let mut parser = Parser::new_from_str(text);
        let mut stack: Vec<Frame> = Vec::new();
        let mut first_node = true;
        while let Ok((event, marker)) = parser.next_token() {
            let line = offset + marker.line();
            if first_node && matches!(event, Event::MappingStart(..) | Event::Scalar(..)) {
                lines.first = line;
                first_node = false;
            }
            match event {
                Event::StreamEnd => break,
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                Event::Scalar(value, ..)
                    if matches!(stack.last(), Some(Frame::Map { key: None, .. })) =>
                {
                    if let Some(Frame::Map { path, key }) = stack.last_mut() {
                        lines.at.entry(join(path, &value)).or_insert(line);
                        *key = Some(value);
                    }
                }
                Event::Scalar(..) | Event::Alias(_) => {
                    lines.value_path(&mut stack, line);
                }
                Event::MappingStart(..) => {
                    let path = lines.value_path(&mut stack, line);
                    stack.push(Frame::Map { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = lines.value_path(&mut stack, line);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                _ => {}
            }
        }
        lines
    }

    /// The path of the value that starts here, recording sequence items' lines; the key of
    /// a mapping is used up by its value.
    fn value_path(&mut self, stack: &mut [Frame], line: usize) -> String {
        match stack.last_mut() {
            None => String::new(),
            Some(Frame::Map { path, key }) => join(path, &key.take().unwrap_or_default()),
            Some(Frame::Seq { path, next }) => {
                let item = format!("{path}[{next}]");
                *next += 1;
                self.at.entry(item.clone()).or_insert(line);
                item
            }
        }
    }

    /// The line of `path`, or of its nearest ancestor that is written out (a missing field
    /// is reported where its parent is), or the document's first line.
    pub fn of(&self, path: &str) -> usize {
        let mut path = path;
        loop {
            if let Some(line) = self.at.get(path) {
                return *line;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.first,
            }
        }
    }
}

/// A JSON pointer within the value at `base` as a field path: `/apiKey` under
/// `spec.input` is `spec.input.apiKey`; array indexes become `[i]`.
pub fn pointer_path(base: &str, pointer: &str, value: &serde_json::Value) -> String {
    let mut path = base.to_owned();
    let mut at = value;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        match at {
            serde_json::Value::Array(items) => {
                path = format!("{path}[{token}]");
                at = token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .unwrap_or(&serde_json::Value::Null);
            }
            _ => {
                path = join(&path, &token);
                at = at.get(&token).unwrap_or(&serde_json::Value::Null);
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
apiVersion: plugboard.dev/v1alpha1
kind: Connection
metadata:
  name: a
spec:
  inputFrom:
    - field: apiKey
      secretKeyRef:
        name: s
    - field: other
  input: {region: eu}
";

    #[test]
    fn every_key_and_list_item_has_its_line_counted_from_the_documents_offset() {
        let lines = Lines::read(DOC, 10);
        assert_eq!(lines.of("kind"), 12);
        assert_eq!(lines.of("metadata.name"), 14);
        assert_eq!(lines.of("spec.inputFrom[0]"), 17);
        assert_eq!(lines.of("spec.inputFrom[0].secretKeyRef.name"), 19);
        assert_eq!(lines.of("spec.inputFrom[1].field"), 20);
        assert_eq!(lines.of("spec.input.region"), 21);
    }

    #[test]
    fn a_missing_field_is_reported_at_its_nearest_written_ancestor() {
        let lines = Lines::read(DOC, 0);
        assert_eq!(lines.of("spec.inputFrom[1].secretKeyRef"), 10);
        assert_eq!(lines.of("spec.tenantRef"), 5);
        assert_eq!(lines.of("status"), 1);
    }

    #[test]
    fn pointers_become_field_paths() {
        let value = serde_json::json!({"list": [{"a/b": 1}]});
        assert_eq!(
            pointer_path("spec.input", "/list/0/a~1b", &value),
            "spec.input.list[0].a/b"
        );
        assert_eq!(pointer_path("spec.input", "", &value), "spec.input");
    }
}
