//! The architecture's rules (ARCHITECTURE.md, "Invariants"), checked on the source of
//! `provisioner/src` and `proximity-service/src`:
//! (a) no import circle between sibling modules, (b) no file under `provisioner/src/commands/`
//! imports another command, (c) no function is longer than 150 lines, (d) `provisioner::engine`
//! names no `aws_*` crate and only `provisioner/src/aws` names `aws_sdk_*` crates.
//!
//! What the scanner sees, and nothing more: it reads each crate from its root (`lib.rs`,
//! `main.rs`) following `mod x;` to `x.rs` or `x/mod.rs` (every `.rs` file under `src/` must be
//! reached that way, or the test fails), with comments, strings and char literals blanked out.
//! A module is a file module or an inline `mod x { … }`. A module *imports* another when a
//! `use` declaration (also `pub use`, with `{…}` trees) or any path in its code starting with
//! `crate::`, `super::` or `self::` (or, in a `use`, with the name of one of its own child
//! modules) names it; a path names the deepest module it spells (`crate::cli::Config` names
//! `cli`). Macro-generated paths and `#[path]` attributes are not seen.
//! An import between a module and one of its ancestors is not a circle (a parent declares its
//! children, children use their parent's items); an import between two modules in different
//! subtrees counts as one between the two sibling subtrees that hold them
//! (`commands::up → cli` is `commands → cli`). Code under `#[cfg(test)]` (inline test modules,
//! `#[cfg(test)] mod tests;` files, test functions) counts for (a) and (b), not for (c) and the
//! `aws_sdk_*` half of (d) (the fault proxy's tests drive the real SDK through it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FN_LINES: usize = 150;

// ---- reading the source ---------------------------------------------------------------

/// Replaces comments, the contents of string literals and char literals with spaces,
/// keeping every newline (so line numbers stay right).
fn blank_out(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r'))) && {
            let mut j = i + if c[i] == 'b' { 2 } else { 1 };
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            c.get(j) == Some(&'"')
        } {
            // Raw string: r"…", r#"…"#, br"…".
            let mut j = i + if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c[j] == '#' {
                hashes += 1;
                j += 1;
            }
            out.push('"');
            (i..j).for_each(|_| out.push(' '));
            out.pop();
            i = j + 1;
            while i < c.len() {
                if c[i] == '"' && (0..hashes).all(|k| c.get(i + 1 + k) == Some(&'#')) {
                    out.push('"');
                    (0..hashes).for_each(|_| out.push(' '));
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
            // '\n', '\'', '\u{1F600}': the quote, the backslash and the escaped char, then on.
            out.push_str("   ");
            i += 3;
            while i < c.len() && c[i] != '\'' {
                blank(&mut out, c[i]);
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(&'static str),
}

/// Identifiers (keywords included) and the punctuation the scanner needs, with their line.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Punct("::"), line));
            i += 2;
        } else if ch == '\'' {
            // A lifetime (char literals are blanked out already).
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else {
            let p = match ch {
                '{' => Some("{"),
                '}' => Some("}"),
                '(' => Some("("),
                ')' => Some(")"),
                '[' => Some("["),
                ']' => Some("]"),
                ';' => Some(";"),
                ',' => Some(","),
                '#' => Some("#"),
                '!' => Some("!"),
                '*' => Some("*"),
                _ => None,
            };
            if let Some(p) = p {
                out.push((Tok::Punct(p), line));
            }
            i += 1;
        }
    }
    out
}

fn ident_of(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn is_punct(t: Option<&(Tok, usize)>, want: &str) -> bool {
    matches!(t, Some((Tok::Punct(p), _)) if *p == want)
}

/// Expands a `use` tree (the tokens between `use` and `;`) into full paths.
fn use_paths(toks: &[(Tok, usize)]) -> Vec<Vec<String>> {
    fn tree(toks: &[(Tok, usize)], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        loop {
            match toks.get(*i) {
                Some((Tok::Punct("::"), _)) => *i += 1,
                Some((Tok::Ident(s), _)) if s == "as" => {
                    *i += 2; // `as name`
                    break;
                }
                Some((Tok::Ident(s), _)) => {
                    path.push(s.clone());
                    *i += 1;
                }
                Some((Tok::Punct("*"), _)) => {
                    *i += 1;
                    break;
                }
                Some((Tok::Punct("{"), _)) => {
                    *i += 1;
                    while !is_punct(toks.get(*i), "}") && *i < toks.len() {
                        tree(toks, i, &path, out);
                        if is_punct(toks.get(*i), ",") {
                            *i += 1;
                        }
                    }
                    *i += 1;
                    return;
                }
                _ => break,
            }
        }
        out.push(path);
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        tree(toks, &mut i, &[], &mut out);
        if i < toks.len() && !is_punct(toks.get(i), "{") {
            i += 1;
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The AWS SDK's crates (`aws_sdk_ec2`, `aws_smithy_types`, `aws_config` …).
fn aws_crate(name: &str) -> bool {
    name.starts_with("aws_sdk_")
        || name.starts_with("aws_smithy_")
        || [
            "aws_config",
            "aws_types",
            "aws_runtime",
            "aws_credential_types",
        ]
        .contains(&name)
}

/// A path a module names, where.
#[derive(Debug)]
struct Reference {
    from: Vec<String>,
    segments: Vec<String>,
    in_use: bool,
    test: bool,
    file: String,
    line: usize,
}

#[derive(Debug)]
struct FnSpan {
    file: String,
    name: String,
    line: usize,
    lines: usize,
}

/// A crate's modules as the scanner sees them.
#[derive(Debug, Default)]
struct Crate {
    name: String,
    /// Module path (below the crate root) → the file that holds it.
    modules: BTreeMap<Vec<String>, String>,
    refs: Vec<Reference>,
    fns: Vec<FnSpan>,
    /// (file, line, crate name, in test code) for every name of an AWS SDK crate.
    aws_names: Vec<(String, usize, String, bool)>,
    files: BTreeSet<PathBuf>,
}

enum Scope {
    Module,
    Fn { name: String, line: usize },
    Other,
}

/// Scans one file that holds module `module`; returns its `mod x;` children (name, test-only).
fn scan_file(
    krate: &mut Crate,
    file: &str,
    text: &str,
    module: &[String],
    test: bool,
) -> Vec<(String, bool)> {
    let toks = tokens(&blank_out(text));
    let mut children = Vec::new();
    // (scope, module path inside it, test-only)
    let mut stack: Vec<(Scope, Vec<String>, bool)> = Vec::new();
    let cur = |stack: &Vec<(Scope, Vec<String>, bool)>| {
        stack
            .last()
            .map_or((module.to_vec(), test), |(_, m, t)| (m.clone(), *t))
    };
    let mut cfg_test = false;
    let mut pending_fn: Option<(String, usize, i32)> = None;
    let mut pending_mod: Option<String> = None;
    let mut depth = 0i32; // parentheses and brackets
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Tok::Punct("#") => {
                // An attribute: `#[…]` or `#![…]`.
                let mut j = i + 1;
                let inner = is_punct(toks.get(j), "!");
                if inner {
                    j += 1;
                }
                if is_punct(toks.get(j), "[") {
                    let start = j;
                    let mut d = 0;
                    while j < toks.len() {
                        if is_punct(toks.get(j), "[") {
                            d += 1;
                        } else if is_punct(toks.get(j), "]") {
                            d -= 1;
                            if d == 0 {
                                break;
                            }
                        }
                        j += 1;
                    }
                    let attr: Vec<&Tok> = toks[start..j].iter().map(|(t, _)| t).collect();
                    let cfg_test_attr = attr.len() == 5
                        && attr[1] == &Tok::Ident("cfg".into())
                        && attr[3] == &Tok::Ident("test".into());
                    if cfg_test_attr {
                        if inner && stack.is_empty() {
                            return Vec::new(); // the whole file is test code: not scanned
                        }
                        cfg_test = true;
                    }
                    i = j + 1;
                    continue;
                }
            }
            Tok::Ident(s) if s == "use" => {
                let mut j = i + 1;
                while j < toks.len() && !is_punct(toks.get(j), ";") {
                    j += 1;
                }
                let (from, t) = cur(&stack);
                for segments in use_paths(&toks[i + 1..j]) {
                    krate.refs.push(Reference {
                        from: from.clone(),
                        segments,
                        in_use: true,
                        test: t || cfg_test,
                        file: file.to_owned(),
                        line: *line,
                    });
                }
                cfg_test = false;
                i = j + 1;
                continue;
            }
            Tok::Ident(s)
                if (s == "crate" || s == "super" || s == "self")
                    && is_punct(toks.get(i + 1), "::") =>
            {
                let mut segments = vec![s.clone()];
                let mut j = i + 1;
                while is_punct(toks.get(j), "::") {
                    match ident_of(toks.get(j + 1)) {
                        Some(n) => segments.push(n.to_owned()),
                        None => break,
                    }
                    j += 2;
                }
                let (from, t) = cur(&stack);
                krate.refs.push(Reference {
                    from,
                    segments,
                    in_use: false,
                    test: t || cfg_test,
                    file: file.to_owned(),
                    line: *line,
                });
                i = j;
                continue;
            }
            Tok::Ident(s) if aws_crate(s) => {
                let t = cur(&stack).1 || cfg_test;
                krate.aws_names.push((file.to_owned(), *line, s.clone(), t));
            }
            Tok::Ident(s) if s == "mod" => {
                if let Some(name) = ident_of(toks.get(i + 1)) {
                    if is_punct(toks.get(i + 2), ";") {
                        let t = cur(&stack).1 || cfg_test;
                        children.push((name.to_owned(), t));
                        cfg_test = false;
                        i += 3;
                        continue;
                    }
                    pending_mod = Some(name.to_owned());
                }
            }
            Tok::Ident(s) if s == "fn" => {
                if let Some(name) = ident_of(toks.get(i + 1)) {
                    pending_fn = Some((name.to_owned(), *line, depth));
                }
            }
            Tok::Punct("(") | Tok::Punct("[") => depth += 1,
            Tok::Punct(")") | Tok::Punct("]") => depth -= 1,
            Tok::Punct(";") => {
                if pending_fn.as_ref().is_some_and(|(_, _, d)| *d == depth) {
                    pending_fn = None; // a declaration without a body
                }
                cfg_test = false;
            }
            Tok::Punct("{") => {
                let (mut m, t) = cur(&stack);
                let t = t || cfg_test;
                cfg_test = false;
                let scope = if let Some(name) = pending_mod.take() {
                    m.push(name);
                    krate.modules.insert(m.clone(), file.to_owned());
                    Scope::Module
                } else if let Some((name, line, _)) = pending_fn.take_if(|(_, _, d)| *d == depth) {
                    Scope::Fn { name, line }
                } else {
                    Scope::Other
                };
                stack.push((scope, m, t));
            }
            Tok::Punct("}") => {
                if let Some((Scope::Fn { name, line: start }, _, t)) = stack.pop() {
                    if !t {
                        krate.fns.push(FnSpan {
                            file: file.to_owned(),
                            name,
                            line: start,
                            lines: line - start + 1,
                        });
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    children
}

/// Reads the crate rooted at `root_file`, following `mod x;`. `files` maps paths to text.
fn read_crate(name: &str, root_file: &Path, files: &BTreeMap<PathBuf, String>) -> Crate {
    let mut krate = Crate {
        name: name.to_owned(),
        ..Crate::default()
    };
    // (file, module path, test-only, directory of its children)
    let mut todo = vec![(
        root_file.to_path_buf(),
        Vec::<String>::new(),
        false,
        root_file
            .parent()
            .expect("a root file in a directory")
            .to_path_buf(),
    )];
    while let Some((file, module, test, dir)) = todo.pop() {
        let text = files
            .get(&file)
            .unwrap_or_else(|| panic!("{}: declared but not found", file.display()));
        krate.files.insert(file.clone());
        krate
            .modules
            .insert(module.clone(), file.display().to_string());
        let shown = file.display().to_string();
        for (child, child_test) in scan_file(&mut krate, &shown, text, &module, test) {
            let flat = dir.join(format!("{child}.rs"));
            let nested = dir.join(&child).join("mod.rs");
            let (path, child_dir) = if files.contains_key(&flat) {
                (flat, dir.join(&child))
            } else if files.contains_key(&nested) {
                (nested, dir.join(&child))
            } else {
                panic!(
                    "{shown}: `mod {child};` has neither {} nor {}",
                    flat.display(),
                    nested.display()
                );
            };
            let mut m = module.clone();
            m.push(child);
            todo.push((path, m, test || child_test, child_dir));
        }
    }
    krate
}

// ---- the import graph ---------------------------------------------------------------------

/// An import between two modules of one crate.
#[derive(Clone, Debug)]
struct Edge {
    from: Vec<String>,
    to: Vec<String>,
    test: bool,
    at: String,
}

fn show(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_owned()
    } else {
        m.join("::")
    }
}

impl Crate {
    fn is_module(&self, m: &[String]) -> bool {
        self.modules.contains_key(m)
    }

    /// The deepest module a path names, or `None` for another crate.
    fn resolve(&self, r: &Reference) -> Option<Vec<String>> {
        let segs = &r.segments;
        let (mut base, mut rest) = match segs[0].as_str() {
            "crate" => (Vec::new(), &segs[1..]),
            "self" => (r.from.clone(), &segs[1..]),
            "super" => {
                let mut base = r.from.clone();
                let mut k = 0;
                while segs.get(k).map(String::as_str) == Some("super") {
                    base.pop();
                    k += 1;
                }
                (base, &segs[k..])
            }
            child
                if r.in_use
                    && self.is_module(&[r.from.clone(), vec![child.to_owned()]].concat()) =>
            {
                (r.from.clone(), &segs[..])
            }
            _ => return None,
        };
        while let Some((first, tail)) = rest.split_first() {
            let mut next = base.clone();
            next.push(first.clone());
            if !self.is_module(&next) {
                break;
            }
            base = next;
            rest = tail;
        }
        Some(base)
    }

    fn edges(&self) -> Vec<Edge> {
        self.refs
            .iter()
            .filter_map(|r| {
                let to = self.resolve(r)?;
                (to != r.from).then(|| Edge {
                    from: r.from.clone(),
                    to,
                    test: r.test,
                    at: format!("{}:{} `{}`", r.file, r.line, r.segments.join("::")),
                })
            })
            .collect()
    }
}

/// Import circles between sibling modules, each as "a → b (where) → … → a (where)".
fn circles(krate: &Crate) -> Vec<String> {
    // Sibling graph: each edge lifted to the children of the two ends' common ancestor.
    let mut graph: BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>> = BTreeMap::new();
    for e in krate.edges() {
        let common = e.from.iter().zip(&e.to).take_while(|(a, b)| a == b).count();
        if common == e.from.len() || common == e.to.len() {
            continue; // between a module and its ancestor
        }
        let (a, b) = (e.from[..=common].to_vec(), e.to[..=common].to_vec());
        graph.entry(a).or_default().entry(b).or_insert(e.at);
    }
    let mut found: BTreeMap<BTreeSet<Vec<String>>, String> = BTreeMap::new();
    for (start, outs) in &graph {
        for first in outs.keys() {
            // Shortest way back from `first` to `start`.
            let mut prev: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([first.clone()]);
            let mut seen = BTreeSet::from([first.clone()]);
            while let Some(n) = queue.pop_front() {
                if &n == start {
                    break;
                }
                for m in graph.get(&n).into_iter().flat_map(|o| o.keys()) {
                    if seen.insert(m.clone()) {
                        prev.insert(m.clone(), n.clone());
                        queue.push_back(m.clone());
                    }
                }
            }
            if !seen.contains(start) {
                continue;
            }
            let mut cycle = vec![start.clone()];
            let mut n = start.clone();
            while &n != first {
                n = prev[&n].clone();
                cycle.push(n.clone());
            }
            cycle.push(start.clone());
            cycle.reverse(); // start, first, …, start
            let members: BTreeSet<Vec<String>> = cycle.iter().cloned().collect();
            let text = cycle
                .windows(2)
                .map(|w| {
                    format!(
                        "{} → {} ({})",
                        show(&w[0]),
                        show(&w[1]),
                        graph[&w[0]][&w[1]]
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            found
                .entry(members)
                .or_insert(format!("{}: {text}", krate.name));
        }
    }
    found.into_values().collect()
}

// ---- the two source trees -------------------------------------------------------------------

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn rs_files(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let rel = path
                .strip_prefix(workspace())
                .expect("inside the workspace");
            out.insert(rel.to_path_buf(), text);
        }
    }
}

/// Both crates (library and binary roots), every `.rs` file under their `src/` reached.
fn crates() -> Vec<Crate> {
    let mut all = Vec::new();
    for dir in ["provisioner", "proximity-service"] {
        let mut files = BTreeMap::new();
        rs_files(&workspace().join(dir).join("src"), &mut files);
        let src = Path::new(dir).join("src");
        let mut reached = BTreeSet::new();
        for root in ["lib.rs", "main.rs"] {
            let root = src.join(root);
            if files.contains_key(&root) {
                let krate = read_crate(&root.display().to_string(), &root, &files);
                reached.extend(krate.files.iter().cloned());
                all.push(krate);
            }
        }
        for bin in files.keys().filter(|p| p.starts_with(src.join("bin"))) {
            let krate = read_crate(&bin.display().to_string(), bin, &files);
            reached.extend(krate.files.iter().cloned());
            all.push(krate);
        }
        let unreached: Vec<_> = files.keys().filter(|f| !reached.contains(*f)).collect();
        assert!(
            unreached.is_empty(),
            "files no `mod` line reaches: {unreached:?}"
        );
    }
    assert!(
        all.iter().map(|c| c.modules.len()).sum::<usize>() > 50,
        "too few modules seen"
    );
    all
}

// ---- the rules --------------------------------------------------------------------------------

#[test]
fn no_import_circles_between_sibling_modules() {
    let crates = crates();
    let lib = &crates[0];
    assert!(
        lib.edges().len() > 100 && lib.is_module(&["engine".into(), "teardown".into()]),
        "the scanner sees too little of {}",
        lib.name
    );
    let found: Vec<String> = crates.iter().flat_map(circles).collect();
    assert!(
        found.is_empty(),
        "modules that import each other, directly or around a circle:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn no_command_imports_another() {
    let crates = crates();
    let lib = crates
        .iter()
        .find(|c| c.name == "provisioner/src/lib.rs")
        .expect("the provisioner library");
    let commands = lib
        .modules
        .keys()
        .filter(|m| m.len() == 2 && m[0] == "commands")
        .count();
    assert!(commands >= 5, "only {commands} command modules seen");
    let bad: Vec<String> = lib
        .edges()
        .into_iter()
        .filter(|e| {
            e.from.len() >= 2
                && e.from[0] == "commands"
                && e.to.len() >= 2
                && e.to[0] == "commands"
                && e.to[1] != e.from[1]
        })
        .map(|e| {
            let test = if e.test { " (test code)" } else { "" };
            format!("{} imports {}{test}: {}", show(&e.from), show(&e.to), e.at)
        })
        .collect();
    assert!(
        bad.is_empty(),
        "commands share code through a module below them, not through each other:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn no_function_is_longer_than_150_lines() {
    let crates = crates();
    assert!(crates.iter().map(|c| c.fns.len()).sum::<usize>() > 500);
    let mut long: Vec<&FnSpan> = crates
        .iter()
        .flat_map(|c| &c.fns)
        .filter(|f| f.lines > MAX_FN_LINES)
        .collect();
    long.sort_by_key(|f| std::cmp::Reverse(f.lines));
    let list: Vec<String> = long
        .iter()
        .map(|f| format!("{}:{} {} ({} lines)", f.file, f.line, f.name, f.lines))
        .collect();
    assert!(
        list.is_empty(),
        "functions over {MAX_FN_LINES} lines (test code aside):\n  {}",
        list.join("\n  ")
    );
}

#[test]
fn only_the_aws_module_names_aws_sdk_crates() {
    let crates = crates();
    let names: Vec<&(String, usize, String, bool)> =
        crates.iter().flat_map(|c| &c.aws_names).collect();
    assert!(
        names
            .iter()
            .any(|(f, _, n, _)| f.starts_with("provisioner/src/aws/") && n.starts_with("aws_sdk_")),
        "the scanner sees no aws_sdk_ name in provisioner/src/aws"
    );
    let mut bad = Vec::new();
    for (file, line, name, test) in names {
        if file.starts_with("provisioner/src/engine/") {
            bad.push(format!(
                "{file}:{line} `{name}`: the engine is cloud-agnostic"
            ));
        } else if name.starts_with("aws_sdk_") && !test && !file.starts_with("provisioner/src/aws/")
        {
            bad.push(format!(
                "{file}:{line} `{name}`: only provisioner/src/aws uses the SDK"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

// ---- the scanner, on small inputs -----------------------------------------------------------

fn synthetic(files: &[(&str, &str)]) -> Crate {
    let files: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect();
    read_crate("demo", Path::new("src/lib.rs"), &files)
}

#[test]
fn scanner_blanks_comments_strings_and_chars() {
    let src = "let a = \"crate::x::y\"; // crate::c\n/* crate::d /* nested */ */ let b = r#\"crate::e\"#; let q = '\"'; let e = '\\''; let l: &'static str;";
    let blanked = blank_out(src);
    assert_eq!(blanked.lines().count(), src.lines().count());
    assert!(!blanked.contains("crate"), "{blanked}");
    assert!(blanked.contains("let l: &'static str;"), "{blanked}");
}

#[test]
fn scanner_expands_use_trees() {
    let toks = tokens("super::{diag::{Diagnostic, Sink}, model::*}, crate::cli::Config as C");
    assert_eq!(
        use_paths(&toks),
        [
            vec!["super", "diag", "Diagnostic"],
            vec!["super", "diag", "Sink"],
            vec!["super", "model"],
            vec!["crate", "cli", "Config"],
        ]
    );
}

#[test]
fn scanner_finds_a_circle_and_a_long_function_and_skips_test_code() {
    let long_body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let krate = synthetic(&[
        ("src/lib.rs", "pub mod a;\npub mod b;\nmod c;\n"),
        ("src/a.rs", "use crate::b::Thing;\npub struct Other;\n"),
        (
            "src/b/mod.rs",
            "mod inner;\npub struct Thing;\n#[cfg(test)]\nmod tests {\n    use super::super::c::X;\n}\n",
        ),
        (
            "src/b/inner.rs",
            &format!("pub fn f() {{\n    let _ = crate::a::Other;\n}}\n#[cfg(test)]\nfn long() {{\n{long_body}}}\n"),
        ),
        ("src/c.rs", &format!("pub struct X;\nfn long() {{\n{long_body}}}\n")),
    ]);
    assert_eq!(krate.modules.len(), 6, "{:?}", krate.modules.keys());
    let found = circles(&krate);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("a → b (src/a.rs:1 `crate::b::Thing`)"),
        "{found:?}"
    );
    assert!(
        found[0].contains("b → a (src/b/inner.rs:2 `crate::a::Other`)"),
        "{found:?}"
    );
    // `super::super::c` from `b::tests` is `c`, a sibling of `b`, not a circle.
    assert!(krate
        .edges()
        .iter()
        .any(|e| show(&e.from) == "b::tests" && show(&e.to) == "c" && e.test));
    let long: Vec<_> = krate
        .fns
        .iter()
        .filter(|f| f.lines > MAX_FN_LINES)
        .collect();
    assert_eq!(long.len(), 1, "{long:?}");
    assert_eq!(
        (long[0].file.as_str(), long[0].name.as_str()),
        ("src/c.rs", "long")
    );
}
