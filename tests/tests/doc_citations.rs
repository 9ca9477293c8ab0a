//! Every citation in the repository resolves inside it.
//!
//! Code and documents cite documents that are not in the repository by label: the reference's
//! defects (`§13.2 #22`, `defect #4`, a bare `#28`), the digest's improvements (`§14.3 #7`,
//! `§14.3 item 7`), digest sections (`§10.2`), findings (`F1`–`F6`), reliability tests
//! (`T1`–`T19`, ranges such as `T10–T12`) and security checks (`S1`–`S16`).
//! `gefs-core/doc/REFERENCE.md` explains each one under a heading that starts with its label.
//! This test scans every `.rs`, `.md`, `.toml`, `.py`, `.sh` and `run` file (in Rust files, only
//! comments and string literals) and fails on a citation without such a heading. A `§N` inside
//! FORMAT.md or DESIGN.md, or right after `FORMAT.md`/`DESIGN.md`, is a section of that
//! document and must be one of its headings (DESIGN.md may also cite the digest); `§13.2` and
//! `§14.3` are the digest's everywhere.
//!
//! It also fails when REFERENCE.md names a file (`path`), a test (`path::function`) or a
//! section of FORMAT.md or DESIGN.md that does not exist, so the explanations follow the code
//! and the documents when they change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Directories never scanned (build output, fuzz corpora, binary fixtures, VCS and tool state).
const SKIP_DIRS: [&str; 5] = [
    "target",
    "corpus",
    "corpus-work",
    "fixtures",
    "node_modules",
];

/// Where a `§N` section citation must resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Doc {
    /// The digest, through REFERENCE.md.
    Reference,
    /// FORMAT.md's own sections.
    Format,
    /// DESIGN.md's own sections, or else the digest.
    DesignOrReference,
    /// DESIGN.md's own sections.
    Design,
}

/// One citation: a REFERENCE.md label (`§13.2 #22`, `T5`, `§10.2`) and where it must resolve.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cite {
    doc: Doc,
    label: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The files to scan, relative to the repository root.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries {
        let e = e.expect("directory entry");
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let ty = e.file_type().expect("file type");
        if ty.is_dir() {
            let hidden = name.starts_with('.') && name != ".ci";
            if !hidden && !SKIP_DIRS.contains(&name.as_str()) {
                files(&p, out);
            }
        } else if ty.is_file() {
            let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
            let scanned = matches!(ext, "rs" | "md" | "toml" | "py" | "sh") || name == "run";
            if scanned && name != "doc_citations.rs" {
                out.push(p);
            }
        }
    }
}

/// The comment and string-literal text of each line of a Rust source (code is blanked out), so
/// that identifiers such as a type parameter `T1` are never taken for citations.
fn rust_text(src: &str) -> Vec<String> {
    #[derive(PartialEq)]
    enum St {
        Code,
        Str,
        Block,
    }
    let mut st = St::Code;
    let mut out = Vec::new();
    for line in src.lines() {
        let c: Vec<char> = line.chars().collect();
        let mut keep = String::new();
        let mut i = 0;
        while i < c.len() {
            let next = c.get(i + 1).copied();
            match st {
                St::Str => {
                    match c[i] {
                        '\\' => {
                            keep.push(' ');
                            i += 1;
                        }
                        '"' => {
                            st = St::Code;
                            keep.push(' ');
                        }
                        ch => keep.push(ch),
                    }
                    i += 1;
                }
                St::Block => {
                    if c[i] == '*' && next == Some('/') {
                        st = St::Code;
                        keep.push(' ');
                        i += 1;
                    } else {
                        keep.push(c[i]);
                    }
                    i += 1;
                }
                St::Code => {
                    if c[i] == '/' && next == Some('/') {
                        keep.extend(&c[i..]);
                        break;
                    }
                    if c[i] == '/' && next == Some('*') {
                        st = St::Block;
                        i += 2;
                        continue;
                    }
                    if c[i] == '"' {
                        st = St::Str;
                        keep.push(' ');
                    } else if c[i] == '\'' {
                        // Skip a char literal ('"', '\'', '\u{22}'); a lifetime is left alone.
                        if next == Some('\\') {
                            if let Some(j) = (i + 2..c.len().min(i + 12)).find(|&j| c[j] == '\'') {
                                i = j;
                            }
                        } else if c.get(i + 2) == Some(&'\'') {
                            i += 2;
                        }
                    }
                    i += 1;
                }
            }
        }
        out.push(keep);
    }
    out
}

fn digits(c: &[char], mut i: usize) -> (String, usize) {
    let mut s = String::new();
    while let Some(d) = c.get(i).filter(|d| d.is_ascii_digit()) {
        s.push(*d);
        i += 1;
    }
    (s, i)
}

fn word_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The citations in one line of text. `own` is where a bare `§N` resolves in this file.
fn cites(line: &str, own: Doc) -> Vec<Cite> {
    let c: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut consumed = BTreeSet::new();
    let reference = |label: String| Cite {
        doc: Doc::Reference,
        label,
    };
    // Sections, and `§13.2 #N` / `§14.3 #N` / `§14.3 item N`.
    for i in (0..c.len()).filter(|&i| c[i] == '§') {
        let (mut sec, mut j) = digits(&c, i + 1);
        if sec.is_empty() {
            continue;
        }
        if c.get(j).is_some_and(|x| x.is_ascii_lowercase()) && !word_char(c.get(j + 1)) {
            sec.push(c[j]);
            j += 1;
        }
        while c.get(j) == Some(&'.') && c.get(j + 1).is_some_and(char::is_ascii_digit) {
            let (d, k) = digits(&c, j + 1);
            sec = format!("{sec}.{d}");
            j = k;
        }
        let mut k = j;
        while c.get(k) == Some(&' ') {
            k += 1;
        }
        let rest: String = c[k..].iter().take(5).collect();
        let item = if c.get(k) == Some(&'#') {
            Some(k + 1)
        } else if rest == "item " {
            Some(k + 5)
        } else {
            None
        };
        let n = item
            .map(|at| (at, digits(&c, at)))
            .filter(|(_, (n, _))| !n.is_empty());
        if let (true, Some((at, (n, _)))) = (sec == "13.2" || sec == "14.3", n) {
            consumed.insert(at - 1);
            out.push(reference(format!("§{sec} #{n}")));
            continue;
        }
        let before: String = c[i.saturating_sub(12)..i].iter().collect();
        let doc = if before.trim_end().ends_with("FORMAT.md") {
            Doc::Format
        } else if before.trim_end().ends_with("DESIGN.md") {
            Doc::Design
        } else if sec == "13.2" || sec == "14.3" {
            // The defect and improvement lists are the digest's wherever they are cited.
            Doc::Reference
        } else {
            own
        };
        out.push(Cite {
            doc,
            label: format!("§{sec}"),
        });
    }
    // Bare defect numbers: `#28`, `defect #4` (not `{:#06x}`, `&#8212;`, `#[test]`).
    for i in (0..c.len()).filter(|&i| c[i] == '#' && !consumed.contains(&i)) {
        let prev = i.checked_sub(1).and_then(|p| c.get(p));
        if word_char(prev) || prev.is_some_and(|p| matches!(p, ':' | '{' | '&' | '#')) {
            continue;
        }
        let (n, j) = digits(&c, i + 1);
        if !n.is_empty() && !word_char(c.get(j)) {
            out.push(reference(format!("§13.2 #{n}")));
        }
    }
    // Findings, tests and checks: `F1`, `T5b`, `S8–S10`.
    let id = |i: usize| -> Option<(char, u32, String, usize)> {
        let l = *c.get(i)?;
        if !matches!(l, 'T' | 'S' | 'F') || word_char(i.checked_sub(1).and_then(|p| c.get(p))) {
            return None;
        }
        let (n, mut j) = digits(&c, i + 1);
        if n.is_empty() || n.len() > 2 {
            return None;
        }
        let mut label = format!("{l}{n}");
        if c.get(j) == Some(&'b') && !word_char(c.get(j + 1)) {
            label.push('b');
            j += 1;
        }
        if word_char(c.get(j)) {
            return None;
        }
        Some((l, n.parse().ok()?, label, j))
    };
    for i in 0..c.len() {
        let Some((l, a, label, j)) = id(i) else {
            continue;
        };
        out.push(reference(label));
        if matches!(c.get(j), Some('–' | '-')) {
            if let Some((l2, b, _, _)) = id(j + 1) {
                if l2 == l && b > a + 1 && b - a < 20 {
                    out.extend((a + 1..b).map(|m| reference(format!("{l}{m}"))));
                }
            }
        }
    }
    out
}

/// The labels of REFERENCE.md: every heading's text before " — ".
fn reference_labels(md: &str) -> BTreeSet<String> {
    md.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .map(|h| h.split(" — ").next().unwrap_or(h).trim().to_string())
        .collect()
}

/// The section numbers of FORMAT.md or DESIGN.md: `## 6a. Snapshots` → `6a`, `### 5.1 …` → `5.1`.
fn section_numbers(md: &str) -> BTreeSet<String> {
    md.lines()
        .filter(|l| l.starts_with("## ") || l.starts_with("### "))
        .filter_map(|l| l.trim_start_matches('#').split_whitespace().next())
        .map(|n| format!("§{}", n.trim_end_matches('.')))
        .collect()
}

struct Labels {
    reference: BTreeSet<String>,
    format: BTreeSet<String>,
    design: BTreeSet<String>,
}

impl Labels {
    fn resolves(&self, c: &Cite) -> bool {
        let r = self.reference.contains(&c.label);
        match c.doc {
            Doc::Reference => r,
            Doc::Format => self.format.contains(&c.label),
            Doc::Design => self.design.contains(&c.label),
            Doc::DesignOrReference => r || self.design.contains(&c.label),
        }
    }
}

#[test]
fn every_citation_has_an_entry() {
    let root = root();
    let doc = root.join("gefs-core/doc");
    let labels = Labels {
        reference: reference_labels(&read(&doc.join("REFERENCE.md"))),
        format: section_numbers(&read(&doc.join("FORMAT.md"))),
        design: section_numbers(&read(&doc.join("DESIGN.md"))),
    };
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();
    let mut found: BTreeMap<Cite, usize> = BTreeMap::new();
    let mut missing = Vec::new();
    for p in &paths {
        let src = read(p);
        let rel = p.strip_prefix(&root).unwrap_or(p).display().to_string();
        let own = match p.file_name().and_then(|n| n.to_str()) {
            Some("FORMAT.md") => Doc::Format,
            Some("DESIGN.md") => Doc::DesignOrReference,
            _ => Doc::Reference,
        };
        let lines = if rel.ends_with(".rs") {
            rust_text(&src)
        } else {
            src.lines().map(str::to_string).collect()
        };
        // REFERENCE.md is checked only for what it cites of FORMAT.md and DESIGN.md.
        let is_reference = rel.ends_with("REFERENCE.md");
        for (n, line) in lines.iter().enumerate() {
            for c in cites(line, own) {
                if is_reference && !matches!(c.doc, Doc::Format | Doc::Design) {
                    continue;
                }
                if !labels.resolves(&c) {
                    missing.push(format!("{rel}:{}: {} ({:?})", n + 1, c.label, c.doc));
                }
                if !is_reference {
                    *found.entry(c).or_default() += 1;
                }
            }
        }
    }
    let outside = found.keys().filter(|c| c.doc == Doc::Reference).count();
    println!(
        "doc_citations: files={} citations={} distinct={} distinct_outside={outside} unresolved={}",
        paths.len(),
        found.values().sum::<usize>(),
        found.len(),
        missing.len()
    );
    let list: Vec<String> = found
        .keys()
        .map(|c| match c.doc {
            Doc::Format => format!("FORMAT.md {}", c.label),
            Doc::Design => format!("DESIGN.md {}", c.label),
            _ => c.label.clone(),
        })
        .collect();
    println!("doc_citations: {}", list.join(", "));
    assert!(
        missing.is_empty(),
        "citations with no entry (add one to gefs-core/doc/REFERENCE.md):\n{}",
        missing.join("\n")
    );
    // A scanner that finds nothing would pass vacuously: the repository cites well over this.
    assert!(
        outside >= 60,
        "only {outside} distinct citations found; is the scanner broken?"
    );
}

#[test]
fn reference_names_real_files_and_tests() {
    let root = root();
    let md = read(&root.join("gefs-core/doc/REFERENCE.md"));
    let tops = [
        "gefs-core/",
        "gefsd/",
        "gefs-mkfs/",
        "gefs-check/",
        "gefs-dump/",
        "gefs-bench/",
        "tests/",
    ];
    let mut bad = Vec::new();
    let mut named = 0;
    for tok in md.split('`').skip(1).step_by(2) {
        if !tops.iter().any(|t| tok.starts_with(t)) || tok.contains(['{', '*', '<', ' ']) {
            continue;
        }
        named += 1;
        let (path, func) = match tok.split_once("::") {
            Some((p, f)) => (p, Some(f)),
            None => (tok, None),
        };
        let p = root.join(path);
        if !p.exists() {
            bad.push(format!("{tok}: no such file"));
            continue;
        }
        if let Some(f) = func {
            let src = read(&p);
            let def = if path.ends_with(".py") { "def" } else { "fn" };
            if !src.contains(&format!("{def} {f}(")) {
                bad.push(format!("{tok}: no `{def} {f}` in {path}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "REFERENCE.md names what does not exist:\n{}",
        bad.join("\n")
    );
    assert!(named >= 100, "only {named} files and tests named");
}

/// The scanner itself, on lines that mix every form with things that are not citations.
#[test]
fn the_scanner_finds_each_form() {
    let labels = |line: &str, own| -> Vec<String> {
        let mut v: Vec<String> = cites(line, own).into_iter().map(|c| c.label).collect();
        v.sort();
        v
    };
    let v = labels(
        "defect #4 (#28), §13.2 #22; §14.3 item 7; F1/§13.2 #1; T10–T12, S4 and T5b; §9.1 / #3",
        Doc::Reference,
    );
    let want = [
        "F1",
        "S4",
        "T10",
        "T11",
        "T12",
        "T5b",
        "§13.2 #1",
        "§13.2 #22",
        "§13.2 #28",
        "§13.2 #3",
        "§13.2 #4",
        "§14.3 #7",
        "§9.1",
    ];
    assert_eq!(v, want);
    assert!(labels(
        "{:#06x} &#8212; #[test] S3TP T100 x#1 UTF8 #0a",
        Doc::Reference
    )
    .is_empty());
    let c = cites("see FORMAT.md §6.1 and DESIGN.md §2", Doc::Reference);
    assert_eq!(c[0].doc, Doc::Format);
    assert_eq!(c[1].doc, Doc::Design);
    let rust = rust_text("fn f<T1>(x: T1) -> char { '\"' } // T5\nlet s = \"S4 {:#x}\"; /* F2 */");
    assert_eq!(rust[0].trim(), "// T5");
    assert_eq!(
        cites(&rust[1], Doc::Reference)
            .into_iter()
            .map(|c| c.label)
            .collect::<Vec<_>>(),
        ["S4", "F2"]
    );
    // An unresolved citation is reported.
    let l = Labels {
        reference: reference_labels("## T5 — x\n### §13.2 #1 — y"),
        format: BTreeSet::new(),
        design: BTreeSet::new(),
    };
    assert!(cites("T5 and #1", Doc::Reference)
        .iter()
        .all(|c| l.resolves(c)));
    assert!(!cites("T6", Doc::Reference).iter().all(|c| l.resolves(c)));
}
