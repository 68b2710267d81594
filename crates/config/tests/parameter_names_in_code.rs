//! Every parameter name the workspace's code spells out is one the
//! registry knows, so a misspelt name fails here rather than reading as an
//! unknown parameter at run time.
//!
//! The scan reads every `*.rs` file of the workspace (the `crates`, `bins`,
//! `tests`, `examples`, `benches` and `fuzz` trees) and takes each string
//! literal that is a whole dotted name under one of the registry's
//! top-level prefixes (`service.`, `local.`, `sasl.`, ...) or one of the
//! original server's other parameter families (`store.`, `logfile.`,
//! `alarm.`); a group of parameters (`service.imap`, as `configutil -p`
//! takes it) counts as known. A deliberate unknown name (a test of the typo suggestions)
//! carries the comment `not a parameter name` on its line or the line
//! above.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use portcullis_config::{PARAMETERS, registry};

const TREES: &[&str] = &["crates", "bins", "tests", "examples", "benches", "fuzz"];
const OTHER_FAMILIES: &[&str] = &["store", "logfile", "alarm"];
const MARKER: &str = "not a parameter name";

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.contains("[workspace]"))
        })
        .expect("the crate is inside the workspace")
        .to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The contents of the double-quoted literals of a line (roughly: text
/// between pairs of `"`; escaped quotes only shift which pieces are taken,
/// and a piece of code never looks like a dotted name).
fn quoted(line: &str) -> impl Iterator<Item = &str> {
    line.split('"').skip(1).step_by(2)
}

fn looks_like_parameter(s: &str, prefixes: &BTreeSet<&str>) -> bool {
    let Some((first, rest)) = s.split_once('.') else {
        return false;
    };
    prefixes.contains(first)
        && !rest.is_empty()
        && !s.ends_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

struct Use {
    file: PathBuf,
    line: usize,
    name: String,
}

fn names_in_code() -> Vec<Use> {
    let root = workspace_root();
    let mut files = Vec::new();
    for tree in TREES {
        rust_files(&root.join(tree), &mut files);
    }
    files.sort();
    assert!(
        files.len() > 20,
        "found only {} files under {}",
        files.len(),
        root.display()
    );
    let prefixes: BTreeSet<&str> = PARAMETERS
        .iter()
        .filter_map(|p| p.name.split('.').next())
        .chain(OTHER_FAMILIES.iter().copied())
        .collect();
    let mut uses = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source file is UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let marked = line.contains(MARKER)
                || i.checked_sub(1).is_some_and(|j| lines[j].contains(MARKER));
            if marked {
                continue;
            }
            for s in quoted(line).filter(|s| looks_like_parameter(s, &prefixes)) {
                uses.push(Use {
                    file: file.strip_prefix(&root).unwrap_or(&file).to_owned(),
                    line: i + 1,
                    name: s.to_owned(),
                });
            }
        }
    }
    uses
}

/// A parameter's name, or a group of them (`service.imap`, as
/// `configutil -p` takes it).
fn is_registered(name: &str) -> bool {
    let group = format!("{}.", name.to_ascii_lowercase());
    registry::lookup(name).is_some() || PARAMETERS.iter().any(|p| p.name.starts_with(&group))
}

#[test]
fn every_parameter_name_in_the_workspace_is_registered() {
    let uses = names_in_code();
    let unknown: Vec<String> = uses
        .iter()
        .filter(|u| !is_registered(&u.name))
        .map(|u| {
            let hint = registry::closest(&u.name)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            format!("{}:{}: `{}`{hint}", u.file.display(), u.line, u.name)
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "parameter names the registry does not know (mark a deliberate one \
         with the comment `{MARKER}`):\n{}",
        unknown.join("\n")
    );
    // The scan does find names (this crate's own tests use dozens).
    let distinct: BTreeSet<&str> = uses.iter().map(|u| u.name.as_str()).collect();
    assert!(distinct.len() > 20, "{distinct:?}");
}

#[test]
fn the_scan_catches_a_misspelt_name() {
    let prefixes: BTreeSet<&str> = ["service", "local"].into_iter().collect();
    let line =
        r#"    let v = config.string("service.imap.domainalowed")?; let w = "local.ugldapport";"#; // not a parameter name
    let found: Vec<&str> = quoted(line)
        .filter(|s| looks_like_parameter(s, &prefixes))
        .collect();
    assert_eq!(found, ["service.imap.domainalowed", "local.ugldapport"]); // not a parameter name
    assert!(!is_registered(found[0]));
    assert!(is_registered(found[1]));
    assert!(is_registered("service.imap"));
    // not a parameter name
    assert!(!is_registered("service.ima"));
    // Prefixes, formats and prose are not names.
    for s in [
        "service.",
        "service.{base}.domainallowed",
        "see service.imap.domainallowed",
        "services.imap",
        "example.com",
    ] {
        assert!(!looks_like_parameter(s, &prefixes), "{s}");
    }
}
