//! Line and column of a key path (`vpcs[1].subnets[0].cidr`) in the source.
//!
//! serde_norway keeps no spans in its `Value`, but it attaches the position
//! of the node being read to any error raised while reading it. So the
//! source is walked once more with a seed that follows the path and fails
//! on purpose at its target: the error's location is the node's. Where the
//! path leaves the source (generated subnets, defaults), the deepest node
//! that exists is given.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::diag::Diagnostic;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name.to_owned()));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            match stripped[..end].parse() {
                Ok(i) => out.push(Seg::Index(i)),
                Err(_) => out.push(Seg::Key(stripped[..end].to_owned())),
            }
            rest = &stripped[end + 1..];
        }
    }
    out
}

/// 1-based `(line, column)` of `path` in `source`.
pub(crate) fn locate(source: &str, path: &str) -> Option<(usize, usize)> {
    let segs = segments(path);
    if segs.is_empty() {
        return None;
    }
    let de = serde_norway::Deserializer::from_str(source);
    match (Walk { segs: &segs }).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| (l.line(), l.column())),
    }
}

/// Fills in the position of diagnostics that have a key path but none yet.
pub(crate) fn fill(source: &str, diags: &mut [Diagnostic]) {
    for d in diags.iter_mut() {
        if d.line.is_none() && !d.path.is_empty() {
            if let Some((l, c)) = locate(source, &d.path) {
                d.line = Some(l);
                d.column = Some(c);
            }
        }
    }
}

struct Walk<'a> {
    segs: &'a [Seg],
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

fn here<E: de::Error>() -> E {
    E::custom("located")
}

/// Every scalar visit falls through to serde's default, an error raised at
/// the scalar: that is the location wanted.
impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.segs.is_empty() {
            return Err(here());
        }
        // A key may itself contain dots (`labels.proximity.dev/pool`): try
        // every run of leading key segments.
        let mut candidates: Vec<(String, usize)> = Vec::new();
        let mut joined = String::new();
        for (i, s) in self.segs.iter().enumerate() {
            let Seg::Key(k) = s else { break };
            if i > 0 {
                joined.push('.');
            }
            joined.push_str(k);
            candidates.push((joined.clone(), i + 1));
        }
        while let Some(key) = map.next_key::<serde_norway::Value>()? {
            let key = match &key {
                serde_norway::Value::String(s) => s.clone(),
                other => serde_norway::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            if let Some((_, n)) = candidates.iter().rev().find(|(c, _)| *c == key) {
                return map.next_value_seed(Walk {
                    segs: &self.segs[*n..],
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(here())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(Seg::Index(target)) = self.segs.first() else {
            return Err(here());
        };
        let mut i = 0;
        loop {
            if i == *target {
                return match seq.next_element_seed(Walk {
                    segs: &self.segs[1..],
                })? {
                    Some(()) => Ok(()),
                    None => Err(here()),
                };
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(here());
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "name: dev\nvpcs:\n  - name: main\n    cidr: 10.0.0.0/16\n    subnets:\n      - {name: a, cidr: 10.0.0.0/24}\n      - {name: b, cidr: 10.9.0.0/24}\nnode_pools:\n  - name: p\n    labels: {proximity.dev/pool: x}\n";

    #[test]
    fn paths_are_split_into_keys_and_indexes() {
        assert_eq!(
            segments("vpcs[1].subnets[0].cidr"),
            vec![
                Seg::Key("vpcs".into()),
                Seg::Index(1),
                Seg::Key("subnets".into()),
                Seg::Index(0),
                Seg::Key("cidr".into())
            ]
        );
    }

    #[test]
    fn locates_block_and_flow_nodes() {
        assert_eq!(locate(SRC, "name"), Some((1, 7)));
        assert_eq!(locate(SRC, "vpcs[0].cidr"), Some((4, 11)));
        assert_eq!(locate(SRC, "vpcs[0].subnets[1].cidr"), Some((7, 25)));
        // Dotted keys, and paths leaving the source: the deepest node.
        assert_eq!(
            locate(SRC, "node_pools[0].labels.proximity.dev/pool"),
            Some((10, 34))
        );
        assert_eq!(locate(SRC, "vpcs[0].subnets[7].cidr").map(|p| p.0), Some(6));
        assert_eq!(locate(SRC, ""), None);
    }
}
