//! The Dockerfile's rules, checked by reading it (no container runtime here): a build stage
//! and a separate final stage, pinned base images (a tag or digest, never `latest`), a locked
//! release build, a distroless final image on the same Debian release as the builder (same
//! glibc), a non-root numeric USER, exec-form ENTRYPOINT ["/plugboard"] and CMD ["run"], and
//! a .dockerignore that keeps in everything the COPY lines read.

/// One instruction: its line, upper-cased name and arguments (continuations joined).
struct Instruction {
    line: usize,
    name: String,
    args: String,
}

fn parse(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if pending.is_none() && (line.is_empty() || line.starts_with('#')) {
            continue; // comments and parser directives
        }
        if pending.is_some() && line.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        let (body, continues) = match line.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        joined.push_str(body.trim());
        joined.push(' ');
        if continues {
            pending = Some((start, joined));
            continue;
        }
        let joined = joined.trim();
        let (name, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((joined, ""));
        out.push(Instruction {
            line: start,
            name: name.to_uppercase(),
            args: args.trim().to_owned(),
        });
    }
    out
}

/// Debian release number of an image reference, from a codename or a `debianNN` name.
fn debian_release(image: &str) -> Option<u32> {
    for (codename, n) in [("bullseye", 11), ("bookworm", 12), ("trixie", 13)] {
        if image.contains(codename) || image.contains(&format!("debian{n}")) {
            return Some(n);
        }
    }
    None
}

/// The JSON array of an exec-form instruction, or None for the shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    serde_json::from_str(args).ok()
}

/// One build stage: its FROM image, its alias and what follows the FROM.
struct Stage<'a> {
    image: String,
    alias: Option<String>,
    instructions: Vec<&'a Instruction>,
}

/// Everything wrong with `dockerfile` (with `dockerignore` as its context filter).
pub fn check(dockerfile: &str, dockerignore: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let instructions = parse(dockerfile);
    let stages = stages(&instructions, &mut problems);
    if stages.len() < 2 {
        problems.push(format!(
            "{} stage(s): build in one, run in another",
            stages.len()
        ));
        return problems;
    }
    check_build(&stages[0], &mut problems);
    check_final(&stages[0], &stages[stages.len() - 1], &mut problems);
    check_sources(&instructions, &stages, dockerignore, &mut problems);
    problems
}

/// Splits the instructions into stages, noting unpinned base images on the way.
fn stages<'a>(instructions: &'a [Instruction], problems: &mut Vec<String>) -> Vec<Stage<'a>> {
    let mut stages: Vec<Stage> = Vec::new();
    for ins in instructions {
        if ins.name == "FROM" {
            let words: Vec<&str> = ins
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let image = words.first().copied().unwrap_or_default().to_owned();
            let alias = match words.get(1) {
                Some(w) if w.eq_ignore_ascii_case("as") => words.get(2).map(|a| a.to_string()),
                _ => None,
            };
            let earlier = stages.iter().any(|s| s.alias.as_deref() == Some(&image));
            if !earlier {
                let name_part = image.rsplit('/').next().unwrap_or_default();
                let tag = name_part.split_once(':').map(|(_, t)| t);
                if tag.is_none() && !image.contains("@sha256:") {
                    problems.push(format!("line {}: {image} has no tag or digest", ins.line));
                }
                if tag.is_some_and(|t| t == "latest" || t.starts_with("latest@")) {
                    problems.push(format!("line {}: {image} uses latest", ins.line));
                }
            }
            stages.push(Stage {
                image,
                alias,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(ins);
        } else if ins.name != "ARG" {
            problems.push(format!(
                "line {}: {} before the first FROM",
                ins.line, ins.name
            ));
        }
    }
    stages
}

fn check_build(build: &Stage, problems: &mut Vec<String>) {
    let locked_release = build.instructions.iter().any(|i| {
        i.name == "RUN"
            && i.args.contains("cargo build")
            && i.args.contains("--release")
            && i.args.contains("--locked")
    });
    if !locked_release {
        problems.push("the build stage has no `cargo build --release --locked`".into());
    }
}

fn check_final(build: &Stage, last: &Stage, problems: &mut Vec<String>) {
    let (build_image, final_image) = (&build.image, &last.image);
    if !final_image.contains("distroless") {
        problems.push(format!("the final image {final_image} is not distroless"));
    }
    match (debian_release(build_image), debian_release(final_image)) {
        (Some(a), Some(b)) if a == b => {}
        (a, b) => problems.push(format!(
            "the builder ({build_image}, Debian {a:?}) and the final image ({final_image}, \
             Debian {b:?}) must share a Debian release, so the binary finds its glibc"
        )),
    }
    let last = &last.instructions;
    match last.iter().rev().find(|i| i.name == "USER") {
        None => problems.push("the final stage sets no USER".into()),
        Some(user) => {
            let uid = user.args.split(':').next().unwrap_or_default();
            if uid.parse::<u32>().map_or(true, |n| n == 0) {
                problems.push(format!(
                    "line {}: USER {} is not a non-root numeric uid (kubelet's runAsNonRoot check needs a number)",
                    user.line, user.args
                ));
            } else if uid != "65532" {
                problems.push(format!(
                    "line {}: USER {} differs from the chart's runAsUser 65532",
                    user.line, user.args
                ));
            }
        }
    }
    let exec = |name: &str| {
        last.iter()
            .rev()
            .find(|i| i.name == name)
            .map(|i| exec_form(&i.args))
    };
    if exec("ENTRYPOINT") != Some(Some(vec!["/plugboard".to_owned()])) {
        problems.push("the final stage needs ENTRYPOINT [\"/plugboard\"] (exec form)".into());
    }
    if exec("CMD") != Some(Some(vec!["run".to_owned()])) {
        problems.push("the final stage needs CMD [\"run\"] (exec form)".into());
    }
    let copies_binary = last.iter().any(|i| {
        i.name == "COPY" && i.args.contains("--from=") && i.args.trim_end().ends_with(" /plugboard")
    });
    if !copies_binary {
        problems.push("the final stage does not COPY --from the build stage to /plugboard".into());
    }
}

/// What ADD and COPY read: no URLs, only stages that exist, and from the build context only
/// what survives .dockerignore (which must keep the heavy directories out).
fn check_sources(
    instructions: &[Instruction],
    stages: &[Stage],
    dockerignore: &str,
    problems: &mut Vec<String>,
) {
    for ins in instructions {
        if ins.name == "ADD" && ins.args.contains("://") {
            problems.push(format!("line {}: ADD from a URL", ins.line));
        }
        if ins.name != "COPY" {
            continue;
        }
        if let Some(from) = ins
            .args
            .split_whitespace()
            .find_map(|w| w.strip_prefix("--from="))
        {
            if !stages.iter().any(|s| s.alias.as_deref() == Some(from)) {
                problems.push(format!(
                    "line {}: COPY --from={from}, no such stage",
                    ins.line
                ));
            }
            continue;
        }
        let words: Vec<&str> = ins
            .args
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for source in &words[..words.len().saturating_sub(1)] {
            if ignored(dockerignore, source.trim_end_matches('/')) {
                problems.push(format!(
                    "line {}: COPY {source}, which .dockerignore leaves out of the context",
                    ins.line
                ));
            }
        }
    }
    for heavy in ["target", ".git"] {
        if !ignored(dockerignore, heavy) {
            problems.push(format!(".dockerignore sends {heavy}/ to the build context"));
        }
    }
}

/// Whether .dockerignore leaves `path` out: the last pattern that matches decides, `!`
/// re-includes. Supports what this repository uses: `*` and literal paths (a trailing `/`
/// or a directory prefix).
fn ignored(dockerignore: &str, path: &str) -> bool {
    let mut verdict = false;
    for line in dockerignore.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (include, pattern) = match line.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, line),
        };
        let pattern = pattern.trim_end_matches('/');
        let matches = pattern == "*" || path == pattern || path.starts_with(&format!("{pattern}/"));
        if matches {
            verdict = !include;
        }
    }
    verdict
}
