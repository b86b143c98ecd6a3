//! The plan as a stable document for machines (`plan --output json`) and as a table for a
//! pull-request comment (`plan --output markdown`). The JSON shape is versioned by `schema`;
//! fields are only ever added within a version (README.md, "The plan document").
//!
//! ```json
//! {
//!   "schema": "provisioner.plan/v1",
//!   "environment": "dev",
//!   "summary": {"create": 2, "update": 1, "unchanged": 61, "errors": 0, "has_changes": true},
//!   "changes": [
//!     {"resource": "subnet/main-private-a", "type": "subnet", "name": "main-private-a",
//!      "action": "update", "reason": "drift: map_public_ip",
//!      "fields": [{"field": "map_public_ip", "actual": true, "desired": false}]}
//!   ],
//!   "errors": [],
//!   "api_calls": 45
//! }
//! ```

use serde::Serialize;
use serde_json::Value;

use crate::engine::Action;
use crate::session::PlanReport;

/// The version of the document's shape.
pub const SCHEMA: &str = "provisioner.plan/v1";

#[derive(Debug, Serialize)]
pub struct PlanDocument {
    pub schema: &'static str,
    pub environment: String,
    pub summary: Summary,
    /// Only resources to create or update, in the order the plan found them.
    pub changes: Vec<ResourceChange>,
    /// Why the plan cannot be applied (an immutable field, a name taken …).
    pub errors: Vec<String>,
    pub api_calls: u64,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub errors: usize,
    pub has_changes: bool,
}

#[derive(Debug, Serialize)]
pub struct ResourceChange {
    /// `type/name`: the resource key (`vpc/main`, `sg-rules/k3s-nodes`, `tags/extra` …).
    pub resource: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// `create` or `update`.
    pub action: &'static str,
    /// Why: "no resource tagged provisioner:name=…", the drifted fields, or what it waits for.
    pub reason: String,
    /// Each differing field: `actual` is `null` for a create.
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub actual: Value,
    pub desired: Value,
}

impl PlanDocument {
    pub fn new(p: &PlanReport) -> Self {
        let changes = p
            .changes
            .iter()
            .filter_map(|c| {
                let action = match c.action {
                    Action::Create => "create",
                    Action::Update => "update",
                    Action::Unchanged => return None,
                };
                Some(ResourceChange {
                    resource: c.key.as_str().to_string(),
                    kind: c.key.kind().to_string(),
                    name: c.key.name().to_string(),
                    action,
                    reason: c.reason.clone(),
                    fields: c
                        .fields
                        .iter()
                        .map(|f| FieldChange {
                            field: f.field.clone(),
                            actual: if c.action == Action::Create {
                                Value::Null
                            } else {
                                f.actual.clone()
                            },
                            desired: f.desired.clone(),
                        })
                        .collect(),
                })
            })
            .collect();
        Self {
            schema: SCHEMA,
            environment: p.env.clone(),
            summary: Summary {
                create: p.create,
                update: p.update,
                unchanged: p.unchanged,
                errors: p.errors.len(),
                has_changes: p.has_changes(),
            },
            changes,
            errors: p.errors.clone(),
            api_calls: p.api_calls,
        }
    }

    /// A GitHub-flavoured Markdown table of the same document.
    pub fn markdown(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "### provisioner plan: `{}`\n\n**{} to create, {} to update, {} unchanged**{}\n\n",
            md(&self.environment),
            s.create,
            s.update,
            s.unchanged,
            if s.errors > 0 {
                format!(", **{} errors**", s.errors)
            } else {
                String::new()
            }
        );
        if self.changes.is_empty() && self.errors.is_empty() {
            out.push_str("No changes: the environment matches the template.\n");
            return out;
        }
        if !self.changes.is_empty() {
            out.push_str("| | resource | why | fields |\n|---|---|---|---|\n");
            for c in &self.changes {
                let sym = if c.action == "create" {
                    "➕"
                } else {
                    "✏️"
                };
                let fields: Vec<String> = c
                    .fields
                    .iter()
                    .map(|f| {
                        if f.actual.is_null() {
                            format!("`{}` = `{}`", md(&f.field), md(&f.desired.to_string()))
                        } else {
                            format!(
                                "`{}`: `{}` → `{}`",
                                md(&f.field),
                                md(&f.actual.to_string()),
                                md(&f.desired.to_string())
                            )
                        }
                    })
                    .collect();
                out.push_str(&format!(
                    "| {sym} {} | `{}` | {} | {} |\n",
                    c.action,
                    md(&c.resource),
                    md(&c.reason),
                    fields.join("<br>")
                ));
            }
        }
        if !self.errors.is_empty() {
            out.push_str("\n**Errors**\n\n");
            for e in &self.errors {
                out.push_str(&format!("- {}\n", md(e)));
            }
        }
        out
    }
}

/// Text safe inside a Markdown table cell: no pipe or line break ends the cell, no backtick
/// ends a code span.
fn md(s: &str) -> String {
    s.replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::FieldDiff;
    use crate::engine::{Change, TaskKey};

    fn report() -> PlanReport {
        PlanReport {
            env: "dev".into(),
            changes: vec![
                Change {
                    key: TaskKey::new("vpc", "main"),
                    action: Action::Create,
                    reason: "no resource tagged provisioner:name=main".into(),
                    fields: vec![FieldDiff {
                        field: "cidr".into(),
                        actual: Value::Null,
                        desired: "10.0.0.0/16".into(),
                    }],
                },
                Change {
                    key: TaskKey::new("subnet", "main-a"),
                    action: Action::Update,
                    reason: "drift: map_public_ip | x".into(),
                    fields: vec![FieldDiff {
                        field: "map_public_ip".into(),
                        actual: true.into(),
                        desired: false.into(),
                    }],
                },
                Change {
                    key: TaskKey::new("igw", "main"),
                    action: Action::Unchanged,
                    reason: String::new(),
                    fields: vec![],
                },
            ],
            create: 1,
            update: 1,
            unchanged: 1,
            errors: vec![],
            api_calls: 7,
            retries: 0,
        }
    }

    #[test]
    fn the_json_document_has_the_v1_shape() {
        let v = serde_json::to_value(PlanDocument::new(&report())).unwrap();
        assert_eq!(v["schema"], "provisioner.plan/v1");
        assert_eq!(v["environment"], "dev");
        assert_eq!(
            v["summary"],
            serde_json::json!({"create": 1, "update": 1, "unchanged": 1, "errors": 0, "has_changes": true})
        );
        let changes = v["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 2, "unchanged resources are only counted");
        assert_eq!(changes[0]["resource"], "vpc/main");
        assert_eq!(changes[0]["type"], "vpc");
        assert_eq!(changes[0]["action"], "create");
        assert_eq!(changes[0]["fields"][0]["actual"], Value::Null);
        assert_eq!(changes[1]["fields"][0]["actual"], true);
        assert_eq!(changes[1]["fields"][0]["desired"], false);
    }

    #[test]
    fn the_markdown_table_has_a_row_per_change_and_escapes_cells() {
        let m = PlanDocument::new(&report()).markdown();
        assert!(
            m.contains("**1 to create, 1 to update, 1 unchanged**"),
            "{m}"
        );
        assert_eq!(m.lines().filter(|l| l.starts_with("| ")).count(), 3, "{m}");
        assert!(m.contains("drift: map_public_ip \\| x"), "{m}");
        assert!(m.contains("`map_public_ip`: `true` → `false`"), "{m}");
    }
}
