//! Evaluating a role's identity-based IAM policies for one action on one resource, the way IAM
//! does for a single account with no boundaries, SCPs or session policies: an explicit `Deny`
//! wins, else an `Allow` grants, else the request is implicitly denied.
//!
//! Supported: `Effect`, `Action`/`NotAction` (case-insensitive, `*` and `?` wildcards),
//! `Resource`/`NotResource` (case-sensitive, wildcards), a single statement or a list. A
//! statement with a `Condition` is not evaluated against any context: such an `Allow` never
//! grants and such a `Deny` always applies (the cautious reading), and the decision says so.

use serde_json::Value;

/// The outcome for one action on one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Granted by the statement named (policy name, statement id or index).
    Allowed(String),
    /// Denied explicitly by the statement named.
    ExplicitDeny(String),
    /// No statement allows it.
    ImplicitDeny,
}

impl Verdict {
    #[cfg(test)]
    pub fn allowed(&self) -> bool {
        matches!(self, Verdict::Allowed(_))
    }
}

/// One policy document with the name it is known by (for the decision log).
#[derive(Clone, Debug)]
pub struct NamedPolicy {
    pub name: String,
    pub document: Value,
}

/// Decodes a policy document as IAM returns it (URL-encoded JSON) or as plain JSON.
pub fn parse_document(raw: &str) -> anyhow::Result<Value> {
    let text = if raw.trim_start().starts_with('{') {
        raw.to_owned()
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(serde_json::from_str(&text)?)
}

/// Evaluates `policies` for `action` (`ssm:GetParameter`) on `resource` (an ARN).
pub fn evaluate(policies: &[NamedPolicy], action: &str, resource: &str) -> Verdict {
    let mut allowed = None;
    for policy in policies {
        for (i, stmt) in statements(&policy.document).into_iter().enumerate() {
            let label = format!(
                "{}#{}",
                policy.name,
                stmt.get("Sid")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string())
            );
            if !applies(stmt, action, resource) {
                continue;
            }
            let conditional = stmt.get("Condition").is_some();
            match stmt.get("Effect").and_then(Value::as_str) {
                Some("Deny") => {
                    let why = if conditional {
                        format!("{label} (its Condition is not evaluated by the twin)")
                    } else {
                        label
                    };
                    return Verdict::ExplicitDeny(why);
                }
                Some("Allow") if !conditional => {
                    allowed.get_or_insert(label);
                }
                _ => {}
            }
        }
    }
    allowed.map_or(Verdict::ImplicitDeny, Verdict::Allowed)
}

fn statements(document: &Value) -> Vec<&Value> {
    match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

fn applies(stmt: &Value, action: &str, resource: &str) -> bool {
    let action_ok = match (stmt.get("Action"), stmt.get("NotAction")) {
        (Some(a), _) => strings(a)
            .iter()
            .any(|p| wildcard(&p.to_ascii_lowercase(), &action.to_ascii_lowercase())),
        (None, Some(na)) => !strings(na)
            .iter()
            .any(|p| wildcard(&p.to_ascii_lowercase(), &action.to_ascii_lowercase())),
        (None, None) => false,
    };
    let resource_ok = match (stmt.get("Resource"), stmt.get("NotResource")) {
        (Some(r), _) => strings(r).iter().any(|p| wildcard(p, resource)),
        (None, Some(nr)) => !strings(nr).iter().any(|p| wildcard(p, resource)),
        (None, None) => false,
    };
    action_ok && resource_ok
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM's glob: `*` any run of characters (also `/` and `:`), `?` any one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/provisioner/dev/k3s/token";

    fn one(doc: Value) -> Vec<NamedPolicy> {
        vec![NamedPolicy {
            name: "p".into(),
            document: doc,
        }]
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("ssm:Get*", "ssm:GetParameter"));
        assert!(wildcard("arn:aws:ssm:*:*:parameter/provisioner/*", TOKEN));
        assert!(wildcard("ssm:GetParamete?", "ssm:GetParameter"));
        assert!(!wildcard("ssm:Put*", "ssm:GetParameter"));
        assert!(!wildcard(
            "arn:aws:ssm:*:*:parameter/provisioner/prod/*",
            TOKEN
        ));
        assert!(wildcard("*", ""));
    }

    #[test]
    fn deny_wins_and_nothing_is_implicit_deny() {
        let allow = json!({"Effect": "Allow", "Action": "ssm:*", "Resource": "*"});
        let deny = json!({"Sid": "NoToken", "Effect": "Deny", "Action": ["ssm:GetParameter"], "Resource": TOKEN});
        assert!(evaluate(
            &one(json!({"Statement": allow.clone()})),
            "ssm:GetParameter",
            TOKEN
        )
        .allowed());
        assert_eq!(
            evaluate(
                &one(json!({"Statement": [allow, deny]})),
                "ssm:GetParameter",
                TOKEN
            ),
            Verdict::ExplicitDeny("p#NoToken".into())
        );
        assert_eq!(
            evaluate(&one(json!({"Statement": []})), "ssm:GetParameter", TOKEN),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn actions_ignore_case_and_not_action_excludes() {
        let doc = json!({"Statement": [{"Effect": "Allow", "Action": "SSM:getparameter", "Resource": TOKEN}]});
        assert!(evaluate(&one(doc), "ssm:GetParameter", TOKEN).allowed());
        let doc =
            json!({"Statement": [{"Effect": "Allow", "NotAction": "ssm:Put*", "Resource": "*"}]});
        assert!(evaluate(&one(doc.clone()), "ssm:GetParameter", TOKEN).allowed());
        assert!(!evaluate(&one(doc), "ssm:PutParameter", TOKEN).allowed());
    }

    #[test]
    fn a_conditional_allow_grants_nothing() {
        let doc = json!({"Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/x": "y"}}}]});
        assert_eq!(
            evaluate(&one(doc), "ssm:GetParameter", TOKEN),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn url_encoded_documents_are_decoded() {
        let doc = parse_document("%7B%22Statement%22%3A%5B%5D%7D").unwrap();
        assert_eq!(doc, json!({"Statement": []}));
    }
}
