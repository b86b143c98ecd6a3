//! Query parameters: label and field selectors as the API server reads them.

use super::*;

pub(super) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn query<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// One term of a label selector.
pub(super) enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Splits on commas outside parentheses.
pub(super) fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

pub(super) fn parse_label_selector(s: &str) -> Result<Vec<Requirement>, String> {
    let set = |v: &str| -> Result<Vec<String>, String> {
        let inner = v
            .trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(|| format!("`{v}`: expected a parenthesised set"))?;
        Ok(inner.split(',').map(|x| x.trim().to_owned()).collect())
    };
    split_terms(s)
        .into_iter()
        .map(|t| {
            if let Some(k) = t.strip_prefix('!') {
                return Ok(Requirement::NotExists(k.trim().to_owned()));
            }
            if let Some((k, v)) = t.split_once("!=") {
                return Ok(Requirement::NotEq(k.trim().to_owned(), v.trim().to_owned()));
            }
            if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                return Ok(Requirement::Eq(k.trim().to_owned(), v.trim().to_owned()));
            }
            if let Some((k, v)) = t.split_once(" notin ") {
                return Ok(Requirement::NotIn(k.trim().to_owned(), set(v)?));
            }
            if let Some((k, v)) = t.split_once(" in ") {
                return Ok(Requirement::In(k.trim().to_owned(), set(v)?));
            }
            if t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                return Ok(Requirement::Exists(t));
            }
            Err(format!("unable to parse requirement: `{t}`"))
        })
        .collect()
}

pub(super) fn labels_match(obj: &Value, reqs: &[Requirement]) -> bool {
    let label = |k: &str| {
        obj.pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    reqs.iter().all(|r| match r {
        Requirement::Eq(k, v) => label(k) == Some(v.as_str()),
        Requirement::NotEq(k, v) => label(k) != Some(v.as_str()),
        Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
        Requirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
        Requirement::Exists(k) => label(k).is_some(),
        Requirement::NotExists(k) => label(k).is_none(),
    })
}

pub(super) fn fields_match(obj: &Value, selector: &str) -> Result<bool, String> {
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (path, want, negate) = if let Some((p, v)) = term.split_once("!=") {
            (p, v, true)
        } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (p, v, false)
        } else {
            return Err(format!("invalid field selector term `{term}`"));
        };
        let have = match at(obj, path.trim()) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        if (have == want.trim()) == negate {
            return Ok(false);
        }
    }
    Ok(true)
}
