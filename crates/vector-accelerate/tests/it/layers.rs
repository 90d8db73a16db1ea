//! The module graph of the library and of the CLI, read from their sources:
//! no import cycles, and the library's layers import only downwards
//! (`core` <- `runtime` <- `cpu` | `cuda` <- `ops` <- `lib.rs`, the two
//! backends never importing each other). Test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

/// Every module file under `src`, by module path (`lib.rs`/`main.rs` is `[]`).
fn module_files(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: ModPath = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            if parts == ["lib"] || parts == ["main"] || parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // `::`
    Punct(char),
}

/// Identifiers, `::` and punctuation of Rust source, with comments, string
/// and character literals removed.
fn tokens(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        let at = |k: usize| c.get(k).copied().unwrap_or(' ');
        let next = |k: usize| at(i + k);
        match c[i] {
            '/' if next(1) == '/' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next(1) == '*' => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(&c, i + 1),
            'r' if (next(1) == '"' || (next(1) == '#' && (next(2) == '"' || next(2) == '#')))
                && !c[..i]
                    .last()
                    .is_some_and(|p| p.is_alphanumeric() || *p == '_') =>
            {
                i = skip_raw_string(&c, i + 1);
            }
            '\'' if next(1) == '\\' || next(2) == '\'' => {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            ':' if next(1) == ':' => {
                out.push(Tok::Path);
                i += 2;
            }
            ch if ch.is_alphanumeric() || ch == '_' => {
                let s = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Ident(c[s..i].iter().collect()));
            }
            ch if ch.is_whitespace() => i += 1,
            ch => {
                out.push(Tok::Punct(ch));
                i += 1;
            }
        }
    }
    out
}

fn skip_string(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i] != '"' {
        i += if c[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

fn skip_raw_string(c: &[char], mut i: usize) -> usize {
    let mut hashes = 0;
    while c[i] == '#' {
        hashes += 1;
        i += 1;
    }
    i += 1;
    while i < c.len() {
        if c[i] == '"'
            && c[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes
        {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// The leaf paths of a `use` tree (`a::{b, c::d}` gives `a::b`, `a::c::d`).
fn use_leaves(toks: &[Tok], prefix: ModPath, out: &mut Vec<ModPath>) {
    let mut path = prefix;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(s) if s == "as" => break,
            Tok::Ident(s) if s == "self" && !path.is_empty() => {}
            Tok::Ident(s) => path.push(s.clone()),
            Tok::Punct('{') => {
                let mut depth = 0;
                let mut start = i + 1;
                for j in i..toks.len() {
                    match toks[j] {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') => depth -= 1,
                        Tok::Punct(',') if depth == 1 => {
                            use_leaves(&toks[start..j], path.clone(), out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        use_leaves(&toks[start..j], path.clone(), out);
                        return;
                    }
                }
                return;
            }
            _ => {}
        }
        i += 1;
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// Skips an item under a `#[cfg(...)]` that names `test` (`#[cfg(test)]`,
/// `#[cfg(all(test, ...))]`) starting at `i` (the `#`), returning the index
/// after it, or `None` when `i` starts no such attribute.
fn skip_test_item(t: &[Tok], i: usize) -> Option<usize> {
    let head = [Tok::Punct('#'), Tok::Punct('['), Tok::Ident("cfg".into())];
    if !t[i..].starts_with(&head) {
        return None;
    }
    let close = (i..t.len()).find(|&j| t[j] == Tok::Punct(']'))?;
    if !t[i..close].contains(&Tok::Ident("test".into())) {
        return None;
    }
    let mut j = close + 1;
    let mut depth = 0;
    while j < t.len() {
        match t[j] {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            Tok::Punct(';') if depth == 0 => return Some(j + 1),
            _ => {}
        }
        j += 1;
    }
    Some(j)
}

/// What one file's code names: child modules declared with `mod x;`, and
/// every path it uses, with the (inline) module each is written in.
struct FileRefs {
    children: BTreeSet<String>,
    paths: Vec<(ModPath, ModPath)>,
}

fn file_refs(text: &str, file_mod: &ModPath) -> FileRefs {
    let t = tokens(text);
    let mut refs = FileRefs {
        children: BTreeSet::new(),
        paths: Vec::new(),
    };
    let (mut inline, mut depth, mut i): (Vec<(String, i32)>, i32, usize) = (Vec::new(), 0, 0);
    let here = |inline: &[(String, i32)]| {
        let mut m = file_mod.clone();
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    while i < t.len() {
        if let Some(j) = skip_test_item(&t, i) {
            i = j;
            continue;
        }
        match &t[i] {
            Tok::Ident(k) if k == "mod" => {
                if let (Some(Tok::Ident(name)), Some(next)) = (t.get(i + 1), t.get(i + 2)) {
                    if *next == Tok::Punct(';') && inline.is_empty() {
                        refs.children.insert(name.clone());
                    } else if *next == Tok::Punct('{') {
                        inline.push((name.clone(), depth));
                        depth += 1;
                        i += 3;
                        continue;
                    }
                }
            }
            Tok::Ident(k) if k == "use" => {
                let end = (i..t.len()).find(|&j| t[j] == Tok::Punct(';')).unwrap();
                let mut leaves = Vec::new();
                use_leaves(&t[i + 1..end], Vec::new(), &mut leaves);
                let m = here(&inline);
                refs.paths
                    .extend(leaves.into_iter().map(|l| (m.clone(), l)));
                i = end + 1;
                continue;
            }
            Tok::Ident(first) if t.get(i + 1) == Some(&Tok::Path) => {
                let mut p = vec![first.clone()];
                let mut j = i + 1;
                while t.get(j) == Some(&Tok::Path) {
                    match t.get(j + 1) {
                        Some(Tok::Ident(s)) => p.push(s.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                refs.paths.push((here(&inline), p));
                i = j;
                continue;
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        i += 1;
    }
    refs
}

/// The module a path written in module `at` names, made absolute
/// (`crate::`, `self::`, `super::`, a child module, or a name a `use` of
/// this file brought in); `None` for other crates.
fn absolute(
    file_mod: &ModPath,
    at: &ModPath,
    p: &ModPath,
    children: &BTreeSet<String>,
    aliases: &BTreeMap<String, ModPath>,
) -> Option<ModPath> {
    let first = p.first()?.as_str();
    let mut m = match first {
        "crate" => return Some(p[1..].to_vec()),
        "self" => at.clone(),
        "super" => {
            let mut m = at.clone();
            let mut k = 0;
            while p.get(k).is_some_and(|s| s == "super") {
                m.pop();
                k += 1;
            }
            m.extend(p[k..].iter().cloned());
            return Some(m);
        }
        _ if children.contains(first) => file_mod.clone(),
        _ if aliases.contains_key(first) => {
            let mut m = aliases[first].clone();
            m.extend(p[1..].iter().cloned());
            return Some(m);
        }
        _ => return None,
    };
    m.extend(p[usize::from(first == "self")..].iter().cloned());
    Some(m)
}

/// The file a module path lands in: the longest prefix that is a module.
fn target(files: &BTreeMap<ModPath, PathBuf>, p: &ModPath) -> Option<ModPath> {
    (0..=p.len())
        .rev()
        .map(|n| p[..n].to_vec())
        .find(|m| files.contains_key(m))
}

/// Module -> modules it imports, for every file of `src`.
fn graph(src: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let files = module_files(src);
    let mut g = BTreeMap::new();
    for (m, f) in &files {
        let refs = file_refs(&std::fs::read_to_string(f).unwrap(), m);
        let mut aliases = BTreeMap::new();
        let mut out = BTreeSet::new();
        // Two rounds: names imported by `use` resolve later paths.
        for _ in 0..2 {
            for (at, p) in &refs.paths {
                let Some(abs) = absolute(m, at, p, &refs.children, &aliases) else {
                    continue;
                };
                if let Some(t) = target(&files, &abs) {
                    if t == abs && t != *m {
                        aliases.insert(p.last().unwrap().clone(), abs.clone());
                    }
                    out.insert(t);
                }
            }
        }
        out.remove(m);
        g.insert(m.clone(), out);
    }
    g
}

/// Strongly connected components of more than one module.
fn cycles(g: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    // Two modules are in one cycle when each reaches the other.
    let reach = |from: &ModPath| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(v) = stack.pop() {
            for w in &g[&v] {
                if seen.insert(w.clone()) {
                    stack.push(w.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<_, _> = g.keys().map(|m| (m.clone(), reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in g.keys() {
        if done.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let comp: Vec<ModPath> = g
            .keys()
            .filter(|o| reaches[m].contains(*o) && reaches[*o].contains(m))
            .cloned()
            .collect();
        done.extend(comp.iter().cloned());
        out.push(comp);
    }
    out
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

fn describe_cycles(g: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<String> {
    cycles(g)
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    g[a].iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("{} -> {}", name(a), name(b)))
                })
                .collect();
            format!("cycle: {}", edges.join(", "))
        })
        .collect()
}

/// The library's layer of a module: 0 core, 1 runtime, 2 the backends, 3
/// ops, 4 index, 5 the crate root and its test hooks (`debug`).
fn layer(m: &ModPath) -> Option<u8> {
    match m.first().map(String::as_str) {
        None | Some("debug") => Some(5),
        Some("core") => Some(0),
        Some("runtime") => Some(1),
        Some("cpu" | "cuda") => Some(2),
        Some("ops") => Some(3),
        Some("index") => Some(4),
        Some(_) => None,
    }
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

#[test]
fn library_has_no_cycles_and_imports_only_downwards() {
    let g = graph(&crate_src("vector-accelerate"));
    let mut problems = describe_cycles(&g);
    for (a, outs) in &g {
        let Some(la) = layer(a) else {
            problems.push(format!(
                "{} is in no layer (core, runtime, cpu, cuda, ops, index)",
                name(a)
            ));
            continue;
        };
        for b in outs {
            let lb = layer(b).unwrap_or(9);
            let sideways = la == 2 && lb == 2 && a[0] != b[0];
            if lb > la || sideways {
                problems.push(format!(
                    "upward or sideways import: {} -> {}",
                    name(a),
                    name(b)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The check sees real imports (guards against a parser that finds none).
    let ops_knn = vec!["ops".to_string(), "knn".into()];
    assert!(g[&ops_knn].contains(&vec!["runtime".to_string(), "backend".into()]));
}

#[test]
fn cli_has_no_cycles() {
    let g = graph(&crate_src("vaccel-cli"));
    let problems = describe_cycles(&g);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(g[&vec!["commands".to_string(), "knn".into()]].contains(&vec!["io".to_string()]));
}

#[test]
fn the_check_finds_a_cycle_and_an_upward_import() {
    let dir = std::env::temp_dir().join(format!("va-layers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("core")).unwrap();
    std::fs::create_dir_all(dir.join("ops")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod core;\nmod ops;\n").unwrap();
    std::fs::write(dir.join("core/mod.rs"), "pub mod a;\n").unwrap();
    std::fs::write(dir.join("core/a.rs"), "use crate::ops::b::B; // \"x\"\n").unwrap();
    std::fs::write(dir.join("ops/mod.rs"), "pub mod b;\n").unwrap();
    std::fs::write(
        dir.join("ops/b.rs"),
        "use crate::{core::a::{self, A}};\n#[cfg(test)]\nmod tests { use crate::x; }\n",
    )
    .unwrap();
    let g = graph(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    let a = vec!["core".to_string(), "a".into()];
    let b = vec!["ops".to_string(), "b".into()];
    assert_eq!(cycles(&g), vec![vec![a.clone(), b.clone()]]);
    assert!(layer(&b) > layer(&a));
}
