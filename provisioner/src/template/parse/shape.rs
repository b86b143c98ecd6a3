//! Shape errors (unknown keys, wrong types): serde stops at the first, so each list item
//! and section is looked at on its own, and the semantic checks still run on the rest.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use super::{Broken, Checker};
use crate::template::diag::{Diagnostic, Sink};
use crate::template::raw::*;

/// serde stops at the first shape error; look at each list item and section
/// on its own so one typo does not hide the others.
pub(super) fn more_shape_errors(sink: &mut Sink, source: &str) {
    let Ok(serde_norway::Value::Mapping(top)) = serde_norway::from_str(source) else {
        return;
    };
    let first = sink
        .errors
        .first()
        .map(|d| d.path.clone())
        .unwrap_or_default();
    fn each<T: DeserializeOwned>(sink: &mut Sink, first: &str, key: &str, v: &serde_norway::Value) {
        let one = |sink: &mut Sink, path: String, v: &serde_norway::Value| {
            if first == path
                || first.starts_with(&format!("{path}."))
                || first.starts_with(&format!("{path}["))
            {
                return;
            }
            if let Err(e) = serde_norway::from_value::<T>(v.clone()) {
                sink.yaml(&e, &path);
            }
        };
        match v {
            serde_norway::Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    one(sink, format!("{key}[{i}]"), item);
                }
            }
            other => one(sink, key.to_owned(), other),
        }
    }
    for (k, v) in &top {
        let Some(key) = k.as_str() else { continue };
        match key {
            "vpcs" => each::<RawVpc>(sink, &first, key, v),
            "peerings" => each::<RawPeering>(sink, &first, key, v),
            "security_groups" => each::<RawSecurityGroup>(sink, &first, key, v),
            "node_pools" => each::<RawNodePool>(sink, &first, key, v),
            "load_balancers" => each::<RawLoadBalancers>(sink, &first, key, v),
            "dns" => each::<RawDns>(sink, &first, key, v),
            "cluster" => each::<RawCluster>(sink, &first, key, v),
            _ => {}
        }
    }
}

/// Top-level lists whose items are checked one by one.
const LISTS: [&str; 4] = ["vpcs", "peerings", "security_groups", "node_pools"];

/// After shape errors confined to list items (the usual typo), drop those
/// items and run the semantic checks on the rest, so that one misspelt key
/// does not hide the other problems. References to a dropped item are not
/// reported again; key paths keep the original indexes.
pub(super) fn check_the_rest(sink: &mut Sink, source: &str, region_override: Option<&str>) {
    use serde_norway::Value;
    let Ok(Value::Mapping(mut top)) = serde_norway::from_str::<Value>(source) else {
        return;
    };
    let mut broken = Broken::default();
    let mut index_maps: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for key in LISTS {
        let Some(Value::Sequence(items)) = top.get_mut(key) else {
            continue;
        };
        let mut kept = Vec::new();
        let mut map = Vec::new();
        for (i, item) in items.drain(..).enumerate() {
            let ok = match key {
                "vpcs" => serde_norway::from_value::<RawVpc>(item.clone()).is_ok(),
                "peerings" => serde_norway::from_value::<RawPeering>(item.clone()).is_ok(),
                "security_groups" => {
                    serde_norway::from_value::<RawSecurityGroup>(item.clone()).is_ok()
                }
                _ => serde_norway::from_value::<RawNodePool>(item.clone()).is_ok(),
            };
            if ok {
                kept.push(item);
                map.push(i);
            } else {
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match key {
                    "vpcs" => broken.vpcs.insert(name),
                    "security_groups" => broken.groups.insert(name),
                    "node_pools" => broken.pools.insert(name),
                    _ => false,
                };
            }
        }
        *items = kept;
        index_maps.insert(key, map);
    }
    let Ok(mut raw) = serde_norway::from_value::<RawEnvironment>(Value::Mapping(top)) else {
        // The shape problem is outside the lists: nothing sound to check.
        return;
    };
    if let Some(region) = region_override {
        raw.region = region.to_owned();
    }
    let (e0, w0) = (sink.errors.len(), sink.warnings.len());
    let mut checker = Checker::new(sink, &raw);
    checker.decl.broken = broken;
    let _ = checker.run(&raw);
    let remap = |d: &mut Diagnostic| {
        for (key, map) in &index_maps {
            let prefix = format!("{key}[");
            let Some(rest) = d.path.strip_prefix(&prefix) else {
                continue;
            };
            let Some((num, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Some(orig) = num.parse::<usize>().ok().and_then(|i| map.get(i)) {
                d.path = format!("{key}[{orig}]{tail}");
            }
        }
    };
    sink.errors[e0..].iter_mut().for_each(remap);
    sink.warnings[w0..].iter_mut().for_each(remap);
}

#[cfg(test)]
mod tests {
    use crate::template::fixtures::*;

    #[test]
    fn a_misspelt_key_does_not_hide_the_other_errors() {
        // vpcs[0] is malformed; the later subnet/pool errors are still found,
        // with their original indexes, and references to the broken VPC are not
        // reported twice.
        let src = with_second_vpc("10.1.0.0/16", false)
            .replace(
                "    az_count: 2\n    nat: single\n",
                "    az_count: 2\n    nat: single\n    natt: 1\n",
            )
            .replace("min: 1, desired: 2, max: 4", "min: 3, desired: 2, max: 4")
            .replace("    subnet_bits: 4\n", "    subnet_bits: 20\n");
        let e = errs(&src);
        assert!(
            e.errors
                .iter()
                .any(|d| d.path == "vpcs[0]" && d.message.contains("unknown field `natt`")),
            "{e}"
        );
        assert_err(&e, "node_pools[1].desired", "outside min..=max");
        assert_err(&e, "vpcs[1].subnet_bits", "outside 1..=12");
        assert!(
            !e.errors
                .iter()
                .any(|d| d.message.contains("unknown VPC `main`")),
            "references to the malformed VPC are not errors again:\n{e}"
        );
    }

    #[test]
    fn unknown_keys_in_several_items_are_all_reported() {
        let src = edit("    az_count: 2\n", "    az_count: 2\n    azs: 2\n").replace(
            "  - name: server\n    vpc: main\n",
            "  - name: server\n    vpc: main\n    egress: []\n",
        );
        let e = errs(&src);
        assert!(e.errors.iter().any(|d| d.path == "vpcs[0]"), "{e}");
        assert!(
            e.errors
                .iter()
                .any(|d| d.path == "security_groups[1]" && d.message.contains("egress")),
            "{e}"
        );
    }
}
