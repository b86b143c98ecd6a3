//! Shared helpers: the reference environments and the external-tool gate.

use std::path::{Path, PathBuf};

use provisioner::bootstrap::K3S_VERSION;
use provisioner::template::Environment;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_owned()
}

/// A template of `vpc-templates/`, with `cluster.k3s_version` pinned to [`K3S_VERSION`]
/// (the bootstrap supports only the v1.34 line).
pub fn template_env(file: &str) -> Environment {
    let path = repo_root().join("vpc-templates").join(file);
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let src: String = src
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("k3s_version:") {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}k3s_version: {K3S_VERSION}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    match provisioner::template::parse_str(&src, &path) {
        Ok(t) => t.env,
        Err(e) => panic!("{e}"),
    }
}

/// The reference `dev` environment.
pub fn dev_env() -> Environment {
    template_env("dev.yaml")
}

/// Finds an external tool: the project's virtualenv (`$SUITE_VENV`, else
/// `~/.cache/proximity-suite/venv`), then PATH.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("SUITE_VENV") {
        dirs.push(PathBuf::from(v).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cache/proximity-suite/venv/bin"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The tool, or `None` after printing why the test is skipped. Under `CI` a missing tool
/// fails the test: CI must run it.
pub fn require_tool(name: &str, install: &str) -> Option<PathBuf> {
    if let Some(p) = find_tool(name) {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("`{name}` is required under CI but was not found; install it with: {install}");
    }
    eprintln!(
        "SKIPPED: `{name}` not found (CI is unset, so this test skips); install it with: {install}"
    );
    None
}
