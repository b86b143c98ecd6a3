//! Diagnostics: every problem names the file, the key path and the reason.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// Key path such as `vpcs[1].subnets[0].cidr`; empty for the whole file.
    pub path: String,
    /// 1-based line and column, when known (YAML syntax and shape errors).
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The template was rejected; holds every error found (and the warnings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TemplateErrors {
    pub file: PathBuf,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl TemplateErrors {
    /// True if some error's key path equals `path` and its message contains
    /// `needle` (handy in tests).
    pub fn has(&self, path: &str, needle: &str) -> bool {
        self.errors
            .iter()
            .any(|d| d.path == path && d.message.contains(needle))
    }
}

impl fmt::Display for TemplateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: template rejected with {n} error{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for d in self.errors.iter().chain(&self.warnings) {
            writeln!(f, "  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TemplateErrors {}

/// Collects diagnostics while walking a template.
#[derive(Debug)]
pub(crate) struct Sink {
    file: PathBuf,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn new(file: &Path) -> Self {
        Self {
            file: file.to_owned(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            severity: Severity::Error,
            file: self.file.clone(),
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
        });
    }

    pub(crate) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            severity: Severity::Warning,
            file: self.file.clone(),
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
        });
    }

    /// A serde_norway error: split "path: message at line L column C".
    pub(crate) fn yaml(&mut self, err: &serde_norway::Error, path_prefix: &str) {
        let (line, column) = match err.location() {
            Some(loc) if loc.line() > 0 || loc.column() > 0 => {
                (Some(loc.line()), Some(loc.column()))
            }
            _ => (None, None),
        };
        let mut text = err.to_string();
        if let Some(idx) = text.rfind(" at line ") {
            text.truncate(idx);
        }
        let (path, message) = split_path(&text);
        let path = join_path(path_prefix, path);
        self.errors.push(Diagnostic {
            severity: Severity::Error,
            file: self.file.clone(),
            path,
            line,
            column,
            message: message.to_owned(),
        });
    }

    pub(crate) fn finish(self) -> TemplateErrors {
        TemplateErrors {
            file: self.file,
            errors: self.errors,
            warnings: self.warnings,
        }
    }
}

/// serde_norway prefixes messages with the path (`vpcs[0].nat: unknown …`).
fn split_path(text: &str) -> (&str, &str) {
    if let Some((head, tail)) = text.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && !head.contains(' ')
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.[]?".contains(c));
        if looks_like_path {
            return (head, tail);
        }
    }
    ("", text)
}

pub(crate) fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty() || rest == ".") {
        (true, _) => {
            if rest == "." {
                String::new()
            } else {
                rest.to_owned()
            }
        }
        (false, true) => prefix.to_owned(),
        (false, false) if rest.starts_with('[') => format!("{prefix}{rest}"),
        (false, false) => format!("{prefix}.{rest}"),
    }
}
