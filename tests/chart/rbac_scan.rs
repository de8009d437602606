//! Derives the Kubernetes API permissions the operator needs from its source, so the chart's
//! ClusterRole can be compared with the calls the code makes.
//!
//! It reads src/ (test modules cut off) one function at a time. The kinds a function calls
//! the API for are the types it names in `Api<T>`, `Api::<T>` or `scoped::<T>`; a function
//! over a generic `Api<K>` stands for every kind its file names. The verbs come from the
//! client calls in the same function (`.create(`, `.patch_status(`, `watcher(`, ...), from
//! the library helpers that call the API on their own (the event recorder, the lease
//! manager), and from owner references that block owner deletion (`/finalizers` update).
//! A function that returns an `Api<T>` (a store's `fn api(&self, ..) -> Api<Secret>`) lends
//! its kind to every function of its file that calls it. `Store::get` and `Api::get` share
//! a name, so reads are seen through `get_opt` and `get_metadata`.

use std::collections::BTreeMap;
use std::path::Path;

/// (apiGroup, resource or resource/subresource, verb).
pub type Grant = (String, String, String);

pub struct Scan {
    /// Each permission, with the call sites (`file:line`) that need it.
    pub calls: BTreeMap<Grant, Vec<String>>,
    /// What the scan found but cannot map to a permission: add it to the tables here.
    pub unknown: Vec<String>,
}

/// Rust type → (apiGroup, resource) for every kind the operator calls the API for.
const KINDS: &[(&str, &str, &str)] = &[
    ("Connection", "plugboard.dev", "connections"),
    ("Connector", "plugboard.dev", "connectors"),
    ("ClusterConnector", "plugboard.dev", "clusterconnectors"),
    ("Tenant", "plugboard.dev", "tenants"),
    ("Secret", "", "secrets"),
];

/// kube client and runtime calls → the verbs they need, and the subresource they act on.
const CALLS: &[(&str, &[&str], &str)] = &[
    (".create(", &["create"], ""),
    (".patch(", &["patch"], ""),
    (".patch_metadata(", &["patch"], ""),
    (".patch_status(", &["patch"], "status"),
    // plugboard's own Context::apply_status: a server-side apply of the status subresource.
    (".apply_status(", &["patch"], "status"),
    (".replace(", &["update"], ""),
    (".replace_status(", &["update"], "status"),
    (".delete(", &["delete"], ""),
    (".delete_collection(", &["deletecollection"], ""),
    (".get_opt(", &["get"], ""),
    (".get_metadata(", &["get"], ""),
    (".get_metadata_opt(", &["get"], ""),
    (".get_status(", &["get"], "status"),
    (".list(", &["list"], ""),
    (".list_metadata(", &["list"], ""),
    // watcher( and metadata_watcher(: an initial list, then a watch.
    ("watcher(", &["list", "watch"], ""),
    ("Controller::new(", &["list", "watch"], ""),
    // kube::runtime::finalizer adds and removes the finalizer with a JSON patch.
    ("finalizer(&", &["patch"], ""),
];

/// Library entry points → the API calls the library then makes by itself.
const LIBRARIES: &[(&str, &str, &str, &[&str])] = &[
    // kube-runtime 5 events::Recorder::publish: create an event, patch its series on repeats.
    (
        "Recorder::new(",
        "events.k8s.io",
        "events",
        &["create", "patch"],
    ),
    // kube-lease-manager 0.13 LeaseState: get, create when missing, patch to acquire/renew/release.
    (
        "LeaseManagerBuilder::new(",
        "coordination.k8s.io",
        "leases",
        &["get", "create", "patch"],
    ),
];

/// Scans every `.rs` file under `dir`.
pub fn scan(dir: &Path) -> Scan {
    let mut files = Vec::new();
    collect(dir, dir, &mut files);
    files.sort();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    scan_sources(&borrowed)
}

/// Commands that run as the person at the terminal, with their kubeconfig, not as the
/// operator's ServiceAccount: what they call is not the chart's to grant.
const NOT_THE_OPERATOR: [&str; 2] = ["validate", "dev"];

fn collect(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let top = path
            .strip_prefix(base)
            .ok()
            .and_then(|p| p.components().next());
        let top = top.map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        });
        if top.is_some_and(|t| NOT_THE_OPERATOR.contains(&t.as_str())) {
            continue;
        }
        if path.is_dir() {
            collect(base, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.strip_prefix(base).unwrap().display().to_string();
            out.push((
                format!("src/{name}"),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

/// A kind named in an `Api` type: a concrete one, or a generic parameter.
#[derive(Debug, Clone, PartialEq)]
enum Named {
    Kind(&'static str, &'static str),
    Generic,
}

/// Scans (file name, source) pairs.
pub fn scan_sources(files: &[(&str, &str)]) -> Scan {
    let mut out = Scan {
        calls: BTreeMap::new(),
        unknown: Vec::new(),
    };
    for (name, text) in files {
        let code = without_tests_and_comments(text);
        for (needle, group, resource, verbs) in LIBRARIES {
            if let Some(at) = code.find(needle) {
                for verb in *verbs {
                    add(&mut out, group, resource, verb, name, line_of(&code, at));
                }
            }
        }
        let chunks = functions(&code);
        let helpers = api_helpers(&chunks, name);
        let file_kinds: Vec<Named> = chunks
            .iter()
            .flat_map(|(start, body)| named_kinds(body, name, *start, &mut out.unknown))
            .filter(|k| *k != Named::Generic)
            .collect();
        for (start, body) in &chunks {
            let mut named = named_kinds(body, name, *start, &mut Vec::new());
            for (helper, kinds) in &helpers {
                let calls = [format!(".{helper}("), format!(" {helper}(")];
                if calls.iter().any(|call| body.contains(call.as_str())) {
                    named.extend(kinds.iter().cloned());
                }
            }
            if named.contains(&Named::Generic) {
                named.extend(file_kinds.iter().cloned());
            }
            let kinds: Vec<(&str, &str)> = named
                .iter()
                .filter_map(|k| match k {
                    Named::Kind(group, resource) => Some((*group, *resource)),
                    Named::Generic => None,
                })
                .collect();
            for (needle, verbs, sub) in CALLS {
                for (at, _) in body.match_indices(needle) {
                    let line = start + line_of(body, at) - 1;
                    if kinds.is_empty() {
                        continue; // not a Kubernetes client call (a string's replace, ...)
                    }
                    for (group, resource) in &kinds {
                        let resource = match *sub {
                            "" => resource.to_string(),
                            sub => format!("{resource}/{sub}"),
                        };
                        for verb in *verbs {
                            add(&mut out, group, &resource, verb, name, line);
                        }
                        // Server-side apply creates the object when it is missing, and the
                        // API server then checks `create` as well.
                        if *needle == ".patch(" && applies(&body[at..]) {
                            add(&mut out, group, &resource, "create", name, line);
                        }
                    }
                }
            }
            owner_references(body, name, *start, &mut out);
        }
    }
    for sites in out.calls.values_mut() {
        sites.sort();
        sites.dedup();
    }
    out
}

/// The functions of a file that return an `Api<T>`, by name, with the kinds they return.
fn api_helpers(chunks: &[(usize, String)], file: &str) -> Vec<(String, Vec<Named>)> {
    chunks
        .iter()
        .filter_map(|(start, body)| {
            let signature = &body[..body.find('{')?];
            let returned = &signature[signature.find("-> Api<")? + 3..];
            let name = signature.split("fn ").nth(1)?;
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let kinds = named_kinds(returned, file, *start, &mut Vec::new());
            (!name.is_empty() && !kinds.is_empty()).then_some((name, kinds))
        })
        .collect()
}

/// Whether the patch call starting `call` sends a server-side apply patch.
fn applies(call: &str) -> bool {
    let statement = call.split(';').next().unwrap_or_default();
    statement.contains("Patch::Apply") || statement.contains("PatchParams::apply")
}

fn add(out: &mut Scan, group: &str, resource: &str, verb: &str, file: &str, line: usize) {
    out.calls
        .entry((group.to_owned(), resource.to_owned(), verb.to_owned()))
        .or_default()
        .push(format!("{file}:{line}"));
}

/// A controller owner reference has blockOwnerDeletion set, which needs `update` on the
/// owner's `/finalizers`. The owner is the receiver, typed in the function's signature.
fn owner_references(body: &str, file: &str, start: usize, out: &mut Scan) {
    for (at, _) in body.match_indices(".controller_owner_ref(") {
        let receiver: String = body[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let line = start + line_of(body, at) - 1;
        let owner = KINDS.iter().find(|(ty, _, _)| {
            [format!("{receiver}: &{ty}"), format!("{receiver}: {ty}")]
                .iter()
                .any(|sig| {
                    body.match_indices(sig.as_str()).any(|(i, _)| {
                        !body[i + sig.len()..].starts_with(|c: char| c.is_alphanumeric())
                    })
                })
        });
        match owner {
            Some((_, group, resource)) => add(
                out,
                group,
                &format!("{resource}/finalizers"),
                "update",
                file,
                line,
            ),
            None => out.unknown.push(format!(
                "{file}:{line}: an owner reference on `{receiver}`, whose kind the scan cannot tell"
            )),
        }
    }
}

/// The source without `#[cfg(test)]` modules and whole-line comments, line numbers kept.
fn without_tests_and_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        if !line.trim_start().starts_with("//") {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Splits source into functions: (first line number, text up to the next function).
fn functions(code: &str) -> Vec<(usize, String)> {
    let mut chunks: Vec<(usize, String)> = vec![(1, String::new())];
    for (i, line) in code.lines().enumerate() {
        let mut words = line.split_whitespace().skip_while(|w| {
            [
                "pub",
                "pub(crate)",
                "pub(super)",
                "async",
                "const",
                "unsafe",
            ]
            .contains(w)
        });
        if words.next() == Some("fn") {
            chunks.push((i + 1, String::new()));
        }
        let last = chunks.last_mut().unwrap();
        last.1.push_str(line);
        last.1.push('\n');
    }
    chunks
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// The kinds `body` names in `Api<T>`, `Api::<T>` or `scoped::<T>`; an unknown type is
/// reported in `unknown`.
fn named_kinds(body: &str, file: &str, start: usize, unknown: &mut Vec<String>) -> Vec<Named> {
    let mut found = Vec::new();
    for opener in ["Api<", "Api::<", "scoped::<"] {
        for (at, _) in body.match_indices(opener) {
            // `Api<` inside another identifier (e.g. `MyApi<`) is not kube's Api.
            if body[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &body[at + opener.len()..];
            let mut depth = 0;
            let end = rest
                .find(|c: char| {
                    match c {
                        '<' => depth += 1,
                        '>' if depth == 0 => return true,
                        '>' => depth -= 1,
                        _ => {}
                    }
                    false
                })
                .unwrap_or(rest.len());
            let ty = rest[..end]
                .trim()
                .trim_start_matches("PartialObjectMeta<")
                .trim_end_matches('>');
            let ident = ty.rsplit("::").next().unwrap_or(ty).trim();
            if ident.len() == 1 && ident.chars().all(|c| c.is_ascii_uppercase()) {
                found.push(Named::Generic);
            } else if let Some((_, group, resource)) = KINDS.iter().find(|(t, _, _)| *t == ident) {
                found.push(Named::Kind(group, resource));
            } else {
                unknown.push(format!(
                    "{file}:{}: Api for `{ident}`, a kind the RBAC scan (tests/chart/rbac_scan.rs) \
                     does not know: add it to KINDS and a rule to charts/plugboard/templates/rbac.yaml",
                    start + line_of(body, at) - 1
                ));
            }
        }
    }
    found
}

/// The scan behind the RBAC comparison sees what a later change would add: a write on a
/// kind through a typed Api, a generic helper, an owner reference, and a kind it does not
/// know; and it ignores string methods of the same name outside API code.
#[test]
fn the_rbac_scan_sees_new_calls_owners_and_kinds() {
    let connect = "\
pub async fn create_tenant(ctx: &Context, t: &Tenant) -> Result<(), Error> {
    let api: Api<Tenant> = Api::namespaced(ctx.client.clone(), \"acme\");
    // api.delete( in a comment is no call
    api.create(&PostParams::default(), t).await?;
    Ok(())
}

fn label(text: &str) -> String {
    text.replace('\\n', \" \")
}

async fn write<K>(api: Api<K>) {
    api.replace_status(\"x\", &pp, body).await;
}

fn own(conn: &Connection) -> Vec<OwnerReference> {
    let api: Api<Connection> = Api::all(client);
    conn.controller_owner_ref(&()).into_iter().collect()
}

fn config(c: Client) {
    let maps: Api<ConfigMap> = Api::all(c);
}

impl SecretStore {
    fn api(&self, conn: &Connection) -> Api<Secret> {
        Api::namespaced(self.client.clone(), \"acme\")
    }

    async fn forget(&self, conn: &Connection) {
        self.api(conn).delete(\"x\", &dp).await;
    }
}

#[cfg(test)]
mod tests {
    fn t() { let a: Api<Secret> = todo!(); a.delete_collection(&dp, &lp); }
}
";
    let scan = scan_sources(&[("src/web/connect.rs", connect)]);
    let has = |g: &str, r: &str, v: &str| {
        scan.calls
            .get(&(g.to_owned(), r.to_owned(), v.to_owned()))
            .cloned()
    };
    assert_eq!(
        has("plugboard.dev", "tenants", "create"),
        Some(vec!["src/web/connect.rs:4".to_owned()])
    );
    for resource in ["tenants/status", "connections/status"] {
        assert!(
            has("plugboard.dev", resource, "update").is_some(),
            "{resource}"
        );
    }
    assert!(has("plugboard.dev", "connections/finalizers", "update").is_some());
    assert!(
        has("plugboard.dev", "tenants", "delete").is_none(),
        "a comment"
    );
    assert_eq!(
        has("", "secrets", "delete"),
        Some(vec!["src/web/connect.rs:31".to_owned()]),
        "through a helper that returns the Api"
    );
    assert!(
        has("", "secrets", "deletecollection").is_none(),
        "a test module"
    );
    assert!(
        !scan
            .calls
            .keys()
            .any(|(_, r, v)| v == "update" && !r.contains('/')),
        "a string's replace is no API call: {:?}",
        scan.calls
    );
    assert_eq!(scan.unknown.len(), 1, "{:?}", scan.unknown);
    assert!(
        scan.unknown[0].contains("src/web/connect.rs:22: Api for `ConfigMap`"),
        "{}",
        scan.unknown[0]
    );
}
