//! Declarative environment templates (`vpc-templates/*.yaml`).
//!
//! Two layers, parse-don't-validate style:
//! - [`raw`]: serde structs mirroring the YAML (`deny_unknown_fields`), no
//!   invariants;
//! - [`model`]: the validated [`Environment`] the engine works from. The only
//!   way to get one is [`load`] / [`parse_str`], which check everything that
//!   can be checked before any AWS call and report **all** problems at once,
//!   each naming the file, the key path (`vpcs[1].subnets[0].cidr`) and the
//!   reason ([`Diagnostic`]).
//!
//! ```no_run
//! let t = provisioner::template::load("vpc-templates/dev.yaml".as_ref())?;
//! for w in &t.warnings { eprintln!("{w}"); }
//! println!("{} VPCs in {}", t.env.vpcs.len(), t.env.region);
//! # Ok::<(), provisioner::template::TemplateErrors>(())
//! ```
//!
//! The field-by-field reference is `vpc-templates/README.md`.

mod diag;
#[cfg(test)]
mod fixtures;
mod image;
mod locate;
pub mod model;
mod parse;
pub mod raw;
mod region;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Severity, TemplateErrors};
pub use image::{check_image_reference, check_mirror_url};
pub use model::*;

/// A successfully validated template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The file it was read from (as given).
    pub file: PathBuf,
    pub env: Environment,
    /// Non-fatal findings (e.g. overlapping CIDRs of VPCs that are not
    /// peered, private nodes without NAT). Print them; they do not block.
    pub warnings: Vec<Diagnostic>,
}

/// Reads and validates a template file.
pub fn load(path: &Path) -> Result<Template, TemplateErrors> {
    load_with(path, &LoadOptions::default())
}

/// How to read a template.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Replaces the template's `region` before validation (`--region`), so
    /// AZ counts are checked against the region actually used.
    pub region_override: Option<String>,
}

/// [`load`] with options.
pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Template, TemplateErrors> {
    match std::fs::read_to_string(path) {
        Ok(src) => parse_str_with(&src, path, opts),
        Err(e) => Err(TemplateErrors {
            file: path.to_owned(),
            errors: vec![Diagnostic {
                severity: Severity::Error,
                file: path.to_owned(),
                path: String::new(),
                line: None,
                column: None,
                message: format!("cannot read the template: {e}"),
            }],
            warnings: Vec::new(),
        }),
    }
}

/// Validates template source; `file` is only used in diagnostics.
pub fn parse_str(source: &str, file: &Path) -> Result<Template, TemplateErrors> {
    parse_str_with(source, file, &LoadOptions::default())
}

/// [`parse_str`] with options.
pub fn parse_str_with(
    source: &str,
    file: &Path,
    opts: &LoadOptions,
) -> Result<Template, TemplateErrors> {
    parse::parse(source, file, opts.region_override.as_deref()).map(|(env, warnings)| Template {
        file: file.to_owned(),
        env,
        warnings,
    })
}

#[cfg(test)]
mod tests;
