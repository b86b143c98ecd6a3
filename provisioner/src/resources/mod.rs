//! One file per AWS resource type, each a [`crate::engine::Resource`] over the narrow traits
//! of [`crate::aws::api`] it uses (find by tag → diff → check immutable fields →
//! create/update). The model builders of [`crate::model`] turn a validated template into tasks
//! over these.
//!
//! Writing one: `State` holds exactly the managed fields (the plan shows them by these names),
//! `immutable_fields` what AWS cannot change in place, `desired` resolves references through
//! the inputs (a not-yet-created one reads [`crate::engine::UNKNOWN`]: `find` then returns
//! `None` without calling AWS); creates tag at creation time (`TagSpecifications`/`Tags`) so
//! a crash never leaves an untagged object. The whole recipe for a new resource type is in
//! [`crate::model`]'s docs.

pub mod autoscaling_group;
pub mod extra_tags;
pub mod iam;
pub mod instance_roll;
pub mod internet_gateway;
pub mod launch_template;
pub mod listener;
pub mod load_balancer;
pub mod nat_gateway;
pub mod route53;
pub mod route_table;
pub mod security_group;
pub mod ssm_parameter;
pub mod subnet;
pub mod target_group;
pub mod vpc;
pub mod vpc_peering;

use std::collections::BTreeMap;

use crate::aws::TAG_NAME;
use crate::engine::{is_known, OutputMap};

pub(crate) fn out_id(id: &str) -> OutputMap {
    [("id".to_string(), id.to_string())].into()
}

pub(crate) fn known(v: &str) -> bool {
    is_known(v)
}

/// The one item tagged `provisioner:name = name`. (Several would mean a crashed create was
/// retried by hand; the first is used and the others are reported by `status`.)
pub(crate) fn by_name<T>(
    items: Vec<T>,
    name: &str,
    tags: impl Fn(&T) -> &BTreeMap<String, String>,
) -> Option<T> {
    items
        .into_iter()
        .find(|i| tags(i).get(TAG_NAME).is_some_and(|n| n == name))
}

/// An AWS name of at most `max` characters: `<env>-<name>`, shortened with a hash suffix
/// (the low 32 bits of its FNV-1a 64 hash, in hex).
pub fn aws_name(env: &str, name: &str, max: usize) -> String {
    let full = format!("{env}-{name}");
    if full.len() <= max {
        return full;
    }
    // A fixed hash: a name that changed with the toolchain would replace load balancers and
    // target groups (std's DefaultHasher makes no such promise).
    let suffix = format!("{:08x}", crate::naming::fnv1a(full.as_bytes()) as u32);
    let keep = max - suffix.len() - 1;
    let head = full[..keep].trim_end_matches('-');
    format!("{head}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_name_hash_is_pinned() {
        // FNV-1a 64 of "a-very-long-environment-name-another-long-name" is
        // 0x45e8c075eca02c91 (computed independently); a change here renames, and so
        // replaces, every shortened load balancer and target group.
        assert_eq!(
            aws_name("a-very-long-environment-name", "another-long-name", 32),
            "a-very-long-environment-eca02c91"
        );
    }

    #[test]
    fn aws_names_fit() {
        assert_eq!(aws_name("dev", "web", 32), "dev-web");
        let long = aws_name("a-very-long-environment-name", "another-long-name", 32);
        assert!(long.len() <= 32, "{long}");
        assert_ne!(
            long,
            aws_name("a-very-long-environment-name", "another-long-nam2", 32)
        );
    }
}
