//! Built-in table of AWS regions and how many availability zones each
//! offers to a typical account (the *usable* count: `us-west-1` has three
//! zones but new accounts only get two).

use std::fmt;

use serde::Serialize;

/// `(region, AZ letters a typical account can use)`, for checking a template
/// before any call. `plan` and `up` map `az_index` to the zones the account
/// really has (DescribeAvailabilityZones, by name) and check `az_count`
/// against them; these names are the fallback without an account.
const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "abcdef"),
    ("us-east-2", "abc"),
    ("us-west-1", "ab"),
    ("us-west-2", "abcd"),
    ("af-south-1", "abc"),
    ("ap-east-1", "abc"),
    ("ap-south-1", "abc"),
    ("ap-south-2", "abc"),
    ("ap-southeast-1", "abc"),
    ("ap-southeast-2", "abc"),
    ("ap-southeast-3", "abc"),
    ("ap-southeast-4", "abc"),
    ("ap-southeast-5", "abc"),
    ("ap-southeast-7", "abc"),
    ("ap-northeast-1", "acd"),
    ("ap-northeast-2", "abcd"),
    ("ap-northeast-3", "abc"),
    ("ca-central-1", "abd"),
    ("ca-west-1", "abc"),
    ("eu-central-1", "abc"),
    ("eu-central-2", "abc"),
    ("eu-west-1", "abc"),
    ("eu-west-2", "abc"),
    ("eu-west-3", "abc"),
    ("eu-south-1", "abc"),
    ("eu-south-2", "abc"),
    ("eu-north-1", "abc"),
    ("il-central-1", "abc"),
    ("me-south-1", "abc"),
    ("me-central-1", "abc"),
    ("mx-central-1", "abc"),
    ("sa-east-1", "abc"),
    ("us-gov-east-1", "abc"),
    ("us-gov-west-1", "abc"),
    ("cn-north-1", "abc"),
    ("cn-northwest-1", "abc"),
];

/// A known AWS region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Region(&'static str);

impl Region {
    /// Parses a region code from the built-in table.
    pub fn parse(s: &str) -> Result<Self, String> {
        REGIONS
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(name, _)| Region(name))
            .ok_or_else(|| {
                let close: Vec<&str> = REGIONS
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| n.split('-').next() == s.split('-').next())
                    .collect();
                if close.is_empty() {
                    format!("unknown AWS region `{s}`")
                } else {
                    format!(
                        "unknown AWS region `{s}` (known regions like it: {})",
                        close.join(", ")
                    )
                }
            })
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    fn letters(&self) -> &'static str {
        REGIONS
            .iter()
            .find(|(n, _)| *n == self.0)
            .map(|(_, l)| *l)
            .unwrap_or("")
    }

    /// Number of availability zones usable in this region.
    pub fn az_count(&self) -> u8 {
        // The table holds at most six letters per region.
        self.letters().len() as u8
    }

    /// The conventional name of AZ number `index` (e.g. `us-east-1b` for 1),
    /// `None` past [`Region::az_count`].
    pub fn az_name(&self, index: u8) -> Option<String> {
        self.letters()
            .chars()
            .nth(usize::from(index))
            .map(|c| format!("{}{c}", self.0))
    }

    /// Every region in the table.
    pub fn all() -> impl Iterator<Item = Region> {
        REGIONS.iter().map(|(n, _)| Region(n))
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn az_counts_of_known_regions() {
        assert_eq!(Region::parse("us-east-1").unwrap().az_count(), 6);
        assert_eq!(Region::parse("us-west-1").unwrap().az_count(), 2);
        assert_eq!(Region::parse("eu-west-1").unwrap().az_count(), 3);
        assert_eq!(
            Region::parse("ap-northeast-1")
                .unwrap()
                .az_name(1)
                .as_deref(),
            Some("ap-northeast-1c")
        );
        assert_eq!(Region::parse("us-east-1").unwrap().az_name(6), None);
    }

    #[test]
    fn unknown_region_suggests_neighbours() {
        let err = Region::parse("us-east-9").unwrap_err();
        assert!(err.contains("us-east-1"), "{err}");
        assert!(Region::parse("mars-1")
            .unwrap_err()
            .contains("unknown AWS region"));
    }
}
