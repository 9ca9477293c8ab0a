//! The layer table of DESIGN.md §1, enforced.
//!
//! Reads every file under `src/`, finds the crate modules each one names
//! (`use crate::…` lines and `crate::…` paths, comments and string literals
//! left out), and fails when
//! - library code names a module its row of the table does not list,
//! - test code (`#[cfg(test)]` modules and the files they declare) names a
//!   module that is neither below its own layer, `testing`, nor one of the
//!   two oracles `check` and `dump`,
//! - the table has a cycle, a module has no row or a row no module,
//! - `lib.rs` shows a table other than DESIGN.md §1's.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Modules any test code may use besides the layers below its own.
const TEST_EXTRAS: [&str; 3] = ["testing", "check", "dump"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The rows of the first markdown table in `text` whose header starts with
/// `| module |`: module name to the modules it may use (`None`: any).
type Table = BTreeMap<String, Option<BTreeSet<String>>>;

fn table_rows(text: &str) -> Vec<String> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("| module |") {
            inside = true;
        } else if inside && !l.starts_with('|') {
            break;
        }
        if inside {
            rows.push(l.to_string());
        }
    }
    rows
}

fn ticked(cell: &str) -> BTreeSet<String> {
    cell.split(',')
        .map(|s| s.trim().trim_matches('`').to_string())
        .filter(|s| !s.is_empty() && s != "—")
        .collect()
}

fn parse_table(rows: &[String]) -> Table {
    let mut t = Table::new();
    for r in rows.iter().skip(2) {
        let cells: Vec<&str> = r.trim_matches('|').split(" | ").collect();
        assert_eq!(cells.len(), 3, "a layer row has three cells: {r}");
        let name = cells[0].trim().trim_matches('`').to_string();
        let uses = if cells[2].trim() == "any" {
            None
        } else {
            Some(ticked(cells[2]))
        };
        assert!(t.insert(name.clone(), uses).is_none(), "{name} twice");
    }
    t
}

/// DESIGN.md §1's table.
fn design_table() -> (Vec<String>, Table) {
    let design = read(&root().join("doc/DESIGN.md"));
    let start = design
        .find("## 1. Layers")
        .expect("DESIGN.md has a section 1");
    let rest = &design[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    let rows = table_rows(&rest[..end]);
    assert!(rows.len() > 2, "DESIGN.md §1 has a layer table");
    let t = parse_table(&rows);
    (rows, t)
}

/// `src` with comments, string and character literals blanked (lengths
/// kept, so offsets still match).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, from: &[char]| {
        for ch in from {
            out.push(if *ch == '\n' { '\n' } else { ' ' });
        }
    };
    let ident = |i: usize| i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    while i < c.len() {
        let rest = &c[i..];
        if rest.starts_with(&['/', '/']) {
            let j = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            blank(&mut out, &c[i..j]);
            i = j;
        } else if rest.starts_with(&['/', '*']) {
            let mut depth = 0;
            let mut j = i;
            while j < c.len() {
                if c[j..].starts_with(&['/', '*']) {
                    depth += 1;
                    j += 2;
                } else if c[j..].starts_with(&['*', '/']) {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &c[i..j]);
            i = j;
        } else if (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r'))) && !ident(i) && {
            let k = if c[i] == 'b' { i + 2 } else { i + 1 };
            let hashes = c[k..].iter().take_while(|&&h| h == '#').count();
            c.get(k + hashes) == Some(&'"')
        } {
            let k = if c[i] == 'b' { i + 2 } else { i + 1 };
            let hashes = c[k..].iter().take_while(|&&h| h == '#').count();
            let mut j = k + hashes + 1;
            while j < c.len() {
                if c[j] == '"'
                    && c[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            blank(&mut out, &c[i..j.min(c.len())]);
            i = j.min(c.len());
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            let j = (j + 1).min(c.len());
            blank(&mut out, &c[i..j]);
            i = j;
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{7f}'), else a lifetime.
            let end = if c.get(i + 1) == Some(&'\\') {
                (i + 2..c.len()).find(|&j| c[j] == '\'').map(|j| j + 1)
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(j) => {
                    blank(&mut out, &c[i..j]);
                    i = j;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The byte just past the brace that closes the one opened at `open`.
fn close(s: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (j, &b) in s.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// Whether the attribute text names a test-only configuration.
fn test_cfg(attr: &str) -> bool {
    attr.starts_with("#[cfg(") && (attr.contains("test") || attr.contains("loom"))
}

/// One file, stripped: its library text (test modules blanked), its test
/// text, and the out-of-line modules it declares behind a test `cfg`.
struct Split {
    lib: String,
    test: String,
    test_mods: Vec<String>,
}

fn split(stripped: &str) -> Split {
    let b = stripped.as_bytes();
    let mut lib = stripped.to_string().into_bytes();
    let mut test = vec![b' '; b.len()];
    let mut test_mods = Vec::new();
    let mut at = 0;
    while let Some(off) = stripped[at..].find("#[cfg(") {
        let a = at + off;
        let attr_end = stripped[a..].find(']').map_or(b.len(), |i| a + i + 1);
        let attr = &stripped[a..attr_end];
        at = attr_end;
        if !test_cfg(attr) {
            continue;
        }
        // The item after the attribute (and any further attributes).
        let mut k = attr_end;
        loop {
            let t = stripped[k..].trim_start();
            k = b.len() - t.len();
            if t.starts_with("#[") {
                k = stripped[k..].find(']').map_or(b.len(), |i| k + i + 1);
            } else {
                break;
            }
        }
        let item = &stripped[k..];
        let item = item
            .strip_prefix("pub(crate) ")
            .or_else(|| item.strip_prefix("pub(super) "))
            .or_else(|| item.strip_prefix("pub "))
            .unwrap_or(item);
        let Some(m) = item.strip_prefix("mod ") else {
            continue;
        };
        let name: String = m
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
            .collect();
        let after = m[name.len()..].trim_start();
        if after.starts_with(';') {
            test_mods.push(name);
        } else if after.starts_with('{') {
            let open = b.len() - after.len();
            let end = close(b, open);
            test[a..end].copy_from_slice(&b[a..end]);
            for x in &mut lib[a..end] {
                if *x != b'\n' {
                    *x = b' ';
                }
            }
            at = end;
        }
    }
    Split {
        lib: String::from_utf8(lib).expect("blanking keeps UTF-8"),
        test: String::from_utf8(test).expect("blanking keeps UTF-8"),
        test_mods,
    }
}

/// The crate modules `text` names: `crate::m` and `crate::{m, n::…}`.
fn named(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let mut out = BTreeSet::new();
    let mut at = 0;
    while let Some(off) = text[at..].find("crate::") {
        let i = at + off;
        at = i + 7;
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
            continue; // e.g. `gefs_crate::`
        }
        let rest = &text[at..];
        if rest.starts_with('{') {
            let end = close(b, at);
            let inner = &text[at + 1..end - 1];
            let mut depth = 0;
            let mut part = String::new();
            let mut parts = Vec::new();
            for ch in inner.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        parts.push(std::mem::take(&mut part));
                        continue;
                    }
                    _ => {}
                }
                part.push(ch);
            }
            parts.push(part);
            for p in parts {
                let n: String = p
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !n.is_empty() {
                    out.insert(n);
                }
            }
        } else {
            let n: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !n.is_empty() {
                out.insert(n);
            }
        }
    }
    out
}

/// Every edge of the crate: (from, to) → the files naming it, library
/// edges and test edges apart.
#[derive(Default)]
struct Graph {
    lib: BTreeMap<(String, String), BTreeSet<String>>,
    test: BTreeMap<(String, String), BTreeSet<String>>,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules under `src`.
fn modules(src: &Path) -> BTreeSet<String> {
    fs::read_dir(src)
        .expect("src")
        .map(|e| e.expect("entry").path())
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(stem)
        })
        .filter(|m| m != "lib")
        .collect()
}

/// The names `lib.rs` re-exports (`pub use m::{A, B};`), each to its module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for l in lib.lines() {
        let Some(rest) = l.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((m, names)) = rest.trim_end_matches(';').split_once("::") else {
            continue;
        };
        for n in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let n = n.trim();
            if !n.is_empty() {
                out.insert(n.to_string(), m.to_string());
            }
        }
    }
    out
}

fn graph(src: &Path, mods: &BTreeSet<String>) -> Graph {
    let re = reexports(&read(&src.join("lib.rs")));
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let mut texts = BTreeMap::new();
    for f in &files {
        texts.insert(f.clone(), split(&strip(&read(f))));
    }
    // Files declared behind a test cfg, and everything beneath them.
    let mut test_paths: Vec<PathBuf> = Vec::new();
    for (f, s) in &texts {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let dir = if stem == "mod" || stem == "lib" {
            f.parent().expect("parent").to_path_buf()
        } else {
            f.with_extension("")
        };
        for m in &s.test_mods {
            test_paths.push(dir.join(m));
        }
    }
    let is_test_file = |f: &Path| {
        test_paths
            .iter()
            .any(|t| f == t.with_extension("rs") || f.starts_with(t))
    };
    let mut g = Graph::default();
    for (f, s) in &texts {
        let rel = f.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a component");
        let from = Path::new(first.as_os_str())
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8")
            .to_string();
        if from == "lib" {
            continue;
        }
        let name = rel.display().to_string();
        let whole_test = is_test_file(f);
        for (text, test) in [(&s.lib, whole_test), (&s.test, true)] {
            for to in named(text) {
                let to = re.get(&to).cloned().unwrap_or(to);
                if to == from || !mods.contains(&to) {
                    continue;
                }
                let map = if test { &mut g.test } else { &mut g.lib };
                map.entry((from.clone(), to))
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    g
}

/// The modules below `m`: everything its row reaches.
fn below(t: &Table, m: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![m.to_string()];
    while let Some(x) = stack.pop() {
        if let Some(Some(uses)) = t.get(&x) {
            for u in uses {
                if seen.insert(u.clone()) {
                    stack.push(u.clone());
                }
            }
        }
    }
    seen
}

/// A cycle of the table, if it has one.
fn cycle(t: &Table) -> Option<Vec<String>> {
    fn visit(
        t: &Table,
        m: &str,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|p| p == m).unwrap_or(0);
                let mut c = path[from..].to_vec();
                c.push(m.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        if let Some(Some(uses)) = t.get(m) {
            for u in uses {
                if let Some(c) = visit(t, u, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in t.keys() {
        if let Some(c) = visit(t, m, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// What breaks the table in `g`, one line each.
fn violations(t: &Table, g: &Graph) -> Vec<String> {
    let mut bad = Vec::new();
    for ((from, to), files) in &g.lib {
        match t.get(from) {
            None => bad.push(format!("{from} has no row in DESIGN.md §1")),
            Some(None) => {}
            Some(Some(uses)) if uses.contains(to) => {}
            Some(Some(_)) => bad.push(format!(
                "{from} → {to} is not in DESIGN.md §1 (library code: {files:?})"
            )),
        }
    }
    for ((from, to), files) in &g.test {
        if matches!(t.get(from), Some(None)) || TEST_EXTRAS.contains(&to.as_str()) {
            continue;
        }
        if !below(t, from).contains(to) {
            bad.push(format!(
                "{from} → {to}: test code may use only layers below its own, \
                 `testing`, `check` and `dump` ({files:?})"
            ));
        }
    }
    bad
}

#[test]
fn imports_follow_the_layer_table() {
    let src = root().join("src");
    let (_, t) = design_table();
    let mods = modules(&src);
    let rows: BTreeSet<String> = t.keys().cloned().collect();
    assert_eq!(
        mods, rows,
        "every module of src/ has one row in DESIGN.md §1 and every row a module"
    );
    if let Some(c) = cycle(&t) {
        panic!("DESIGN.md §1's table has a cycle: {}", c.join(" → "));
    }
    let g = graph(&src, &mods);
    let bad = violations(&t, &g);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // Every row's allowance is used, so the table stays as narrow as the code.
    let unused: Vec<String> = t
        .iter()
        .flat_map(|(m, uses)| uses.iter().flatten().map(move |u| (m, u)))
        .filter(|(m, u)| !g.lib.contains_key(&((*m).clone(), (*u).clone())))
        .map(|(m, u)| format!("{m} → {u}"))
        .collect();
    assert!(
        unused.is_empty(),
        "DESIGN.md §1 allows edges the library code does not use; narrow the rows: {}",
        unused.join(", ")
    );
    println!(
        "layers: {} modules, {} library edges, {} test edges",
        mods.len(),
        g.lib.len(),
        g.test.len()
    );
}

#[test]
fn lib_rs_shows_the_design_table() {
    let (design, _) = design_table();
    let lib = read(&root().join("src/lib.rs"));
    let doc: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        table_rows(&doc),
        design,
        "lib.rs's //! table is DESIGN.md §1's"
    );
}

#[test]
fn the_checker_of_this_test_fails_on_bad_edges_and_cycles() {
    let src = "use crate::{a, b::{c, d}};\n\
               // crate::hidden\n\
               fn f() -> char { let _ = \"crate::nope\"; let _ = r#\"crate::no\"#; crate::e::f(); '{' }\n\
               #[cfg(test)]\nmod tests { use crate::g; fn h<'a>(x: &'a u8) {} }\n\
               #[cfg(test)]\nmod more;\n";
    let s = split(&strip(src));
    let lib = named(&s.lib);
    let want: BTreeSet<String> = ["a", "b", "e"].iter().map(|s| s.to_string()).collect();
    assert_eq!(lib, want);
    assert_eq!(named(&s.test), BTreeSet::from(["g".to_string()]));
    assert_eq!(s.test_mods, vec!["more".to_string()]);

    let rows: Vec<String> = [
        "| module | owns | may use |",
        "|---|---|---|",
        "| `x` | x | — |",
        "| `y` | y | `x` |",
        "| `z` | z | `y` |",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let t = parse_table(&rows);
    assert!(cycle(&t).is_none());
    let mut g = Graph::default();
    g.lib.insert(("z".into(), "y".into()), BTreeSet::new());
    g.test.insert(("z".into(), "x".into()), BTreeSet::new());
    assert!(violations(&t, &g).is_empty());
    g.lib.insert(("x".into(), "z".into()), BTreeSet::new());
    g.test.insert(("y".into(), "z".into()), BTreeSet::new());
    assert_eq!(violations(&t, &g).len(), 2, "{:?}", violations(&t, &g));

    let mut cyc = rows.clone();
    cyc[2] = "| `x` | x | `z` |".to_string();
    assert!(cycle(&parse_table(&cyc)).is_some());
}
