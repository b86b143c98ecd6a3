//! Opaque pagination cursor.
//!
//! A cursor is the position of the last result of a page, `(distance_m, id)`, plus a 64-bit
//! check value computed over that position *and the query it belongs to* (centre, radius,
//! category: see [`CursorScope`]). Encoded as unpadded URL-safe base64 of
//! `version(1) ‖ distance_m f64 BE(8) ‖ id i64 BE(8) ‖ check u64 BE(8)` = 34 characters.
//!
//! The check value is not a secret MAC: it rejects corrupted or edited cursors and cursors that
//! were issued for a different query (all with a false-accept probability of 2⁻⁶⁴), which is all
//! a position in a public result list needs. It is deterministic, so every instance of the
//! service accepts the cursors of every other instance.

use super::{BusinessId, Category, Coordinates, DomainError, RadiusM};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::fmt;
use std::str::FromStr;

const VERSION: u8 = 1;
const RAW_LEN: usize = 1 + 8 + 8 + 8;
/// Longest accepted encoded cursor (anything longer is rejected before decoding).
const MAX_ENCODED_LEN: usize = 64;

/// Identifies the result list a cursor belongs to: a hash of centre, radius and category.
///
/// The index kind is deliberately not part of it: geohash and H3 return identical lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CursorScope(u64);

impl CursorScope {
    /// The scope of the query `(center, radius, category)`.
    pub fn new(center: Coordinates, radius: RadiusM, category: Option<&Category>) -> Self {
        let mut h = Fnv::new();
        h.write(b"proximity-service/nearby/v1");
        h.write(&center.lat_deg().to_bits().to_be_bytes());
        h.write(&center.lng_deg().to_bits().to_be_bytes());
        h.write(&radius.metres().to_bits().to_be_bytes());
        match category {
            Some(c) => {
                h.write(&[1]);
                h.write(c.as_str().as_bytes());
            }
            None => h.write(&[0]),
        }
        Self(h.finish())
    }
}

/// The position after which the next page starts. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    distance_m: f64,
    id: BusinessId,
    check: u64,
}

impl Cursor {
    /// A cursor pointing just after the result `(distance_m, id)` of the query `scope`.
    pub fn new(scope: CursorScope, distance_m: f64, id: BusinessId) -> Self {
        Self {
            distance_m,
            id,
            check: check_value(scope, distance_m, id),
        }
    }

    /// Decodes a cursor string; the error names the field `cursor`.
    ///
    /// This checks the format only; whether the cursor belongs to a query is checked by
    /// [`Cursor::position`].
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| DomainError::new("cursor", format!("invalid cursor: {why}"));
        if s.len() > MAX_ENCODED_LEN {
            return Err(bad("too long"));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(s.as_bytes())
            .map_err(|_| bad("not URL-safe base64"))?;
        if raw.len() != RAW_LEN {
            return Err(bad("wrong length"));
        }
        if raw[0] != VERSION {
            return Err(bad("unknown version"));
        }
        let word = |i: usize| -> [u8; 8] { raw[i..i + 8].try_into().expect("8 bytes") };
        let distance_m = f64::from_bits(u64::from_be_bytes(word(1)));
        let id = i64::from_be_bytes(word(9));
        let check = u64::from_be_bytes(word(17));
        if !distance_m.is_finite() || distance_m < 0.0 {
            return Err(bad("distance out of range"));
        }
        let id = BusinessId::parse(id).map_err(|_| bad("id out of range"))?;
        Ok(Self {
            distance_m,
            id,
            check,
        })
    }

    /// The position `(distance_m, id)` if the cursor was issued for `scope`; otherwise a
    /// `cursor` error (tampered, or issued for another query).
    pub fn position(&self, scope: CursorScope) -> Result<(f64, BusinessId), DomainError> {
        if check_value(scope, self.distance_m, self.id) != self.check {
            return Err(DomainError::new(
                "cursor",
                "invalid cursor: it was not issued for this query (centre, radius and category must be unchanged)",
            ));
        }
        Ok((self.distance_m, self.id))
    }

    /// The URL-safe string form.
    pub fn encode(&self) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..9].copy_from_slice(&self.distance_m.to_bits().to_be_bytes());
        raw[9..17].copy_from_slice(&self.id.get().to_be_bytes());
        raw[17..25].copy_from_slice(&self.check.to_be_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for Cursor {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

fn check_value(scope: CursorScope, distance_m: f64, id: BusinessId) -> u64 {
    let mut h = Fnv::new();
    h.write(&[VERSION]);
    h.write(&scope.0.to_be_bytes());
    h.write(&distance_m.to_bits().to_be_bytes());
    h.write(&id.get().to_be_bytes());
    h.finish()
}

/// FNV-1a 64 with a splitmix64 finaliser: deterministic across processes and versions.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
