//! Which cell index answers a nearby query.

use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The cell index used to find candidates; both give identical results.
///
/// The default is the faster one on our benchmark (`benches/index.rs`): geohash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// Z-order geohash cells covering the bounding box of the search circle.
    #[default]
    Geohash,
    /// H3 hexagons: the centre's cell plus a `grid_disk` that provably covers the circle.
    H3,
}

impl IndexKind {
    /// Every kind, in the order the API documents them.
    pub const ALL: [IndexKind; 2] = [IndexKind::Geohash, IndexKind::H3];

    /// The wire name (`geohash` | `h3`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Geohash => "geohash",
            Self::H3 => "h3",
        }
    }
}

impl FromStr for IndexKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "geohash" => Ok(Self::Geohash),
            "h3" => Ok(Self::H3),
            other => Err(DomainError::new(
                "index",
                format!("must be `geohash` or `h3`, got {other:?}"),
            )),
        }
    }
}

impl fmt::Display for IndexKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
