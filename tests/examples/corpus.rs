//! Reading `examples/` into documents, and looking objects up among them.

use std::path::{Path, PathBuf};

use plugboard::api::{ClusterConnector, Connector, ConnectorSpec};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One YAML document of one example file, as YAML and as JSON.
pub struct Doc {
    pub file: String,
    pub index: usize,
    pub yaml: serde_yaml::Value,
    pub json: Value,
}

impl Doc {
    pub fn kind(&self) -> &str {
        self.json["kind"].as_str().unwrap_or("<no kind>")
    }

    pub fn name(&self) -> &str {
        self.json["metadata"]["name"]
            .as_str()
            .unwrap_or("<no name>")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.json["metadata"]["namespace"].as_str()
    }

    /// `Connection/name`.
    pub fn kind_name(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }

    /// `examples/x.yaml, document 2 (Connection acme/name)`.
    pub fn label(&self) -> String {
        let object = match self.namespace() {
            Some(ns) => format!("{ns}/{}", self.name()),
            None => self.name().to_owned(),
        };
        format!(
            "{}, document {} ({} {object})",
            self.file,
            self.index + 1,
            self.kind()
        )
    }

    /// The document as `T`; panics naming the document when it does not read.
    pub fn typed<T: DeserializeOwned>(&self) -> T {
        serde_yaml::from_value(self.yaml.clone()).unwrap_or_else(|err| {
            panic!("{}: does not read as {}: {err}", self.label(), self.kind())
        })
    }
}

/// Every document of every example file, in the order `kubectl apply -f` reads them.
pub struct Examples {
    pub docs: Vec<Doc>,
}

impl Examples {
    pub fn load() -> Self {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
            .expect("examples/ is readable")
            .map(|entry| entry.expect("examples/ is readable").path())
            .filter(|path| {
                matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                )
            })
            .collect();
        files.sort();
        let docs = files
            .iter()
            .flat_map(|path| {
                let name = path.file_name().unwrap().to_string_lossy();
                parse(&format!("examples/{name}"), &read(&name))
            })
            .collect();
        Self { docs }
    }

    /// The object of `kind` named `name` in `namespace` (`None`: cluster-scoped).
    pub fn find(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&Doc> {
        self.docs
            .iter()
            .find(|d| d.kind() == kind && d.namespace() == namespace && d.name() == name)
    }
}

/// The spec of a Connector or ClusterConnector document.
pub fn connector_spec(doc: &Doc) -> ConnectorSpec {
    match doc.kind() {
        "ClusterConnector" => doc.typed::<ClusterConnector>().spec.0,
        _ => doc.typed::<Connector>().spec,
    }
}

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

pub fn read(file: &str) -> String {
    std::fs::read_to_string(dir().join(file))
        .unwrap_or_else(|err| panic!("examples/{file} cannot be read: {err}"))
}

/// The non-empty documents of one YAML stream; `file` names it in messages.
pub fn parse(file: &str, text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    for (index, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let yaml = serde_yaml::Value::deserialize(de)
            .unwrap_or_else(|err| panic!("{file}, document {}: not YAML: {err}", index + 1));
        if yaml.is_null() {
            continue;
        }
        let json = serde_json::to_value(&yaml).unwrap_or_else(|err| {
            panic!("{file}, document {}: not JSON-compatible: {err}", index + 1)
        });
        let file = file.to_owned();
        docs.push(Doc {
            file,
            index,
            yaml,
            json,
        });
    }
    docs
}

/// The first document of an example file with `from` replaced by `to`.
pub fn mutated(file: &str, from: &str, to: &str) -> Doc {
    let text = read(file);
    let changed = text.replace(from, to);
    assert_ne!(text, changed, "examples/{file} does not contain {from:?}");
    let label = format!("examples/{file} (with {to:?})");
    parse(&label, &changed)
        .into_iter()
        .next()
        .expect("one document")
}

/// One document of one example file, for the negative tests.
pub fn document(file: &str, index: usize) -> Doc {
    parse(&format!("examples/{file}"), &read(file))
        .into_iter()
        .find(|d| d.index == index)
        .unwrap_or_else(|| panic!("examples/{file} has no document {}", index + 1))
}
