//! Geohash: our own encoder and the cell cover used by the geohash index.
//!
//! A point's *key* is the 64-bit Z-order interleaving of a 32-bit longitude and a 32-bit
//! latitude grid index, longitude bit first — exactly the bit string of a geohash, so the
//! base32 geohash of precision `p` is the top `5p` bits of the key (precision 12 = 60 bits).
//! Every prefix length `L` (a *level*, 0..=64 bits) is a grid of cells, and all keys inside a
//! cell form one contiguous key range: the index keeps places sorted by key and answers a cell
//! with two binary searches.
//!
//! The search cover ([`cover`]) takes the exact bounding box of the search cap (latitude
//! `φ ± r/R`; longitude `λ ± asin(sin(r/R)/cos φ)`, or every longitude when the cap reaches a
//! pole), picks the finest level at which that box spans at most [`MAX_COVER_CELLS`] cells —
//! i.e. the radius's cell plus the neighbours the circle reaches — and wraps columns around the
//! antimeridian. Near the poles or for radii too large for a fine level this falls back, by the
//! same rule, to coarser cells or whole latitude bands: always a superset of the circle, so the
//! exact distance filter that follows sees every match.

use super::haversine::EARTH_RADIUS_M;
use crate::domain::{Coordinates, RadiusM};

const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// Most cells a search cover may use (more, smaller cells scan fewer points but cost more
/// binary searches).
pub const MAX_COVER_CELLS: u64 = 16;

/// Safety margin added around the cap's bounding box, in degrees (≈ 1 cm); absorbs rounding.
const MARGIN_DEG: f64 = 1e-7;

/// A geohash precision, 1..=12 base32 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Precision(u8);

impl Precision {
    /// Longest supported geohash.
    pub const MAX: u8 = 12;

    /// `Some` for 1..=12.
    pub fn new(p: u8) -> Option<Self> {
        (1..=Self::MAX).contains(&p).then_some(Self(p))
    }

    /// The number of characters.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// The latitude/longitude bounds of a geohash cell, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellBounds {
    /// Southern edge.
    pub lat_min: f64,
    /// Northern edge.
    pub lat_max: f64,
    /// Western edge.
    pub lng_min: f64,
    /// Eastern edge.
    pub lng_max: f64,
}

fn lng_index(lng_deg: f64) -> u32 {
    let v = ((lng_deg + 180.0) / 360.0 * 4_294_967_296.0).floor();
    v.clamp(0.0, 4_294_967_295.0) as u32
}

fn lat_index(lat_deg: f64) -> u32 {
    let v = ((lat_deg + 90.0) / 180.0 * 4_294_967_296.0).floor();
    v.clamp(0.0, 4_294_967_295.0) as u32
}

/// Spreads the 32 bits of `v` to the even bit positions of a `u64`.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

/// Inverse of [`spread`].
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

fn interleave(x: u32, y: u32) -> u64 {
    (spread(x) << 1) | spread(y)
}

/// The 64-bit Z-order key of a point (see the module docs).
pub fn key(lat_deg: f64, lng_deg: f64) -> u64 {
    interleave(lng_index(lng_deg), lat_index(lat_deg))
}

/// The base32 geohash of `c` with `precision` characters.
pub fn encode(c: Coordinates, precision: Precision) -> String {
    let k = key(c.lat_deg(), c.lng_deg());
    (0..precision.get())
        .map(|i| BASE32[((k >> (59 - 5 * u32::from(i))) & 31) as usize] as char)
        .collect()
}

/// Decodes a geohash (1..=12 base32 characters, lower case) into its cell's key prefix.
fn decode_prefix(hash: &str) -> Option<(u64, u32)> {
    if hash.is_empty() || hash.len() > usize::from(Precision::MAX) {
        return None;
    }
    let mut prefix = 0u64;
    for b in hash.bytes() {
        let v = BASE32.iter().position(|&c| c == b)? as u64;
        prefix = (prefix << 5) | v;
    }
    Some((prefix, 5 * hash.len() as u32))
}

/// Grid sizes (columns, rows) at a level of `bits` bits.
fn grid_bits(bits: u32) -> (u32, u32) {
    (bits.div_ceil(2), bits / 2)
}

/// The bounds of a geohash cell; `None` for an invalid geohash.
pub fn decode(hash: &str) -> Option<CellBounds> {
    let (prefix, bits) = decode_prefix(hash)?;
    Some(cell_bounds(prefix, bits))
}

/// Column and row of the cell `prefix` at level `bits`.
fn cell_xy(prefix: u64, bits: u32) -> (u32, u32) {
    if bits == 0 {
        return (0, 0);
    }
    let full = prefix << (64 - bits);
    let (xb, yb) = grid_bits(bits);
    let x = squash(full >> 1);
    let y = squash(full);
    let cx = if xb == 0 { 0 } else { x >> (32 - xb) };
    let cy = if yb == 0 { 0 } else { y >> (32 - yb) };
    (cx, cy)
}

/// The prefix of the cell at column `cx`, row `cy` of level `bits`.
fn cell_prefix(cx: u32, cy: u32, bits: u32) -> u64 {
    if bits == 0 {
        return 0;
    }
    let (xb, yb) = grid_bits(bits);
    let x = if xb == 0 { 0 } else { cx << (32 - xb) };
    let y = if yb == 0 { 0 } else { cy << (32 - yb) };
    interleave(x, y) >> (64 - bits)
}

fn prefix_to_hash(prefix: u64, chars: u32) -> String {
    (0..chars)
        .map(|i| BASE32[((prefix >> (5 * (chars - 1 - i))) & 31) as usize] as char)
        .collect()
}

/// The neighbouring cells of `hash` (N, NE, E, SE, S, SW, W, NW order, skipping those beyond a
/// pole), wrapping around the antimeridian. `None` for an invalid geohash.
pub fn neighbours(hash: &str) -> Option<Vec<String>> {
    let (prefix, bits) = decode_prefix(hash)?;
    let (cx, cy) = cell_xy(prefix, bits);
    let (xb, yb) = grid_bits(bits);
    let cols = 1i64 << xb;
    let rows = 1i64 << yb;
    let mut out = Vec::with_capacity(8);
    for (dx, dy) in [
        (0, 1),
        (1, 1),
        (1, 0),
        (1, -1),
        (0, -1),
        (-1, -1),
        (-1, 0),
        (-1, 1),
    ] {
        let ny = i64::from(cy) + dy;
        if !(0..rows).contains(&ny) {
            continue;
        }
        let nx = (i64::from(cx) + dx).rem_euclid(cols);
        let p = cell_prefix(nx as u32, ny as u32, bits);
        out.push(prefix_to_hash(p, bits / 5));
    }
    Some(out)
}

/// Cell size of a precision as (width at the equator, height) in metres.
pub fn cell_size_m(precision: Precision) -> (f64, f64) {
    let bits = 5 * u32::from(precision.get());
    let (xb, yb) = grid_bits(bits);
    let m_per_deg = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    (
        360.0 / 2f64.powi(xb as i32) * m_per_deg,
        180.0 / 2f64.powi(yb as i32) * m_per_deg,
    )
}

/// The bounding box of a spherical cap, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapBox {
    /// Southern bound (≥ -90).
    pub lat_min: f64,
    /// Northern bound (≤ 90).
    pub lat_max: f64,
    /// Longitude half-width around the centre; `None` when the cap contains a pole (every
    /// longitude).
    pub lng_half_width: Option<f64>,
}

/// The exact bounding box of the cap of `radius` around `center`, widened by a tiny margin.
pub fn cap_box(center: Coordinates, radius: RadiusM) -> CapBox {
    let delta = radius.metres() / EARTH_RADIUS_M; // angular radius, radians
    let delta_deg = delta.to_degrees() * (1.0 + 1e-9) + MARGIN_DEG;
    let lat = center.lat_deg();
    let lat_min = lat - delta_deg;
    let lat_max = lat + delta_deg;
    if lat_max >= 90.0 || lat_min <= -90.0 {
        return CapBox {
            lat_min: lat_min.max(-90.0),
            lat_max: lat_max.min(90.0),
            lng_half_width: None,
        };
    }
    let s = delta.sin() / lat.to_radians().cos();
    let half = if s >= 1.0 {
        None
    } else {
        Some(s.asin().to_degrees() * (1.0 + 1e-9) + MARGIN_DEG)
    };
    CapBox {
        lat_min,
        lat_max,
        lng_half_width: half.filter(|h| *h < 180.0),
    }
}

/// The finest precision whose cell plus its 8 neighbours is guaranteed to cover the search
/// circle, or `None` when no precision can (the circle reaches a pole, or is wider than the
/// cells of precision 1). The index does not need this: [`cover`] generalises it.
pub fn precision_for_radius(center: Coordinates, radius: RadiusM) -> Option<Precision> {
    let b = cap_box(center, radius);
    let half_lng = b.lng_half_width?;
    let half_lat = center.lat_deg() - b.lat_min;
    (1..=Precision::MAX).rev().find_map(|p| {
        let (xb, yb) = grid_bits(5 * u32::from(p));
        let w = 360.0 / 2f64.powi(xb as i32);
        let h = 180.0 / 2f64.powi(yb as i32);
        (w >= half_lng && h >= half_lat).then_some(Precision(p))
    })
}

/// Inclusive key ranges (sorted, disjoint, merged) whose union contains every key of every
/// point within `radius` of `center`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    /// Level (bits) of the cells used.
    pub bits: u32,
    /// Inclusive `(first, last)` key ranges.
    pub ranges: Vec<(u64, u64)>,
}

/// Columns `[lo, hi]` (inclusive, possibly two pieces around the antimeridian).
fn column_spans(center_lng: f64, half: Option<f64>, xb: u32) -> Vec<(u32, u32)> {
    let last = ((1u64 << xb) - 1) as u32;
    let to_col = |lng: f64| {
        if xb == 0 {
            0
        } else {
            lng_index(lng) >> (32 - xb)
        }
    };
    let Some(half) = half else {
        return vec![(0, last)];
    };
    let lo = center_lng - half;
    let hi = center_lng + half;
    if lo < -180.0 && hi > 180.0 {
        vec![(0, last)]
    } else if lo < -180.0 {
        vec![(to_col(lo + 360.0), last), (0, to_col(hi))]
    } else if hi > 180.0 {
        vec![(to_col(lo), last), (0, to_col(hi - 360.0))]
    } else {
        vec![(to_col(lo), to_col(hi))]
    }
}

fn cell_count(spans: &[(u32, u32)], rows: (u32, u32)) -> u64 {
    let cols: u64 = spans
        .iter()
        .map(|&(a, b)| if a <= b { u64::from(b - a) + 1 } else { 0 })
        .sum();
    cols * (u64::from(rows.1 - rows.0) + 1)
}

/// The cells of the search cover: level (bits) and cell prefixes, in key order (see the module
/// docs).
pub fn cover_cells(center: Coordinates, radius: RadiusM) -> (u32, Vec<u64>) {
    let b = cap_box(center, radius);
    // Finest first; 52 bits ≈ 0.6 m cells is finer than any useful radius.
    for bits in (1..=52u32).rev() {
        let (xb, yb) = grid_bits(bits);
        let to_row = |lat: f64| {
            if yb == 0 {
                0
            } else {
                lat_index(lat) >> (32 - yb)
            }
        };
        let rows = (to_row(b.lat_min), to_row(b.lat_max));
        let spans = column_spans(center.lng_deg(), b.lng_half_width, xb);
        if cell_count(&spans, rows) > MAX_COVER_CELLS {
            continue;
        }
        let mut cells = Vec::new();
        for cy in rows.0..=rows.1 {
            for &(a, z) in &spans {
                cells.extend((a..=z).map(|cx| cell_prefix(cx, cy, bits)));
            }
        }
        cells.sort_unstable();
        cells.dedup();
        return (bits, cells);
    }
    (0, vec![0])
}

/// The inclusive key range of the cell `prefix` at level `bits`.
pub fn cell_key_range(prefix: u64, bits: u32) -> (u64, u64) {
    if bits == 0 {
        (0, u64::MAX)
    } else {
        let first = prefix << (64 - bits);
        (first, first | u64::MAX.checked_shr(bits).unwrap_or(0))
    }
}

/// The bounds of the cell `prefix` at level `bits`, in degrees.
pub fn cell_bounds(prefix: u64, bits: u32) -> CellBounds {
    let (cx, cy) = cell_xy(prefix, bits);
    let (xb, yb) = grid_bits(bits);
    let w = 360.0 / 2f64.powi(xb as i32);
    let h = 180.0 / 2f64.powi(yb as i32);
    CellBounds {
        lat_min: -90.0 + f64::from(cy) * h,
        lat_max: -90.0 + f64::from(cy) * h + h,
        lng_min: -180.0 + f64::from(cx) * w,
        lng_max: -180.0 + f64::from(cx) * w + w,
    }
}

/// The key ranges to scan for a search of `radius` around `center` (see the module docs).
pub fn cover(center: Coordinates, radius: RadiusM) -> Cover {
    let (bits, cells) = cover_cells(center, radius);
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(cells.len());
    for (a, z) in cells.into_iter().map(|p| cell_key_range(p, bits)) {
        match merged.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(a) || last.1 >= a => {
                last.1 = last.1.max(z);
            }
            _ => merged.push((a, z)),
        }
    }
    Cover {
        bits,
        ranges: merged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lat: f64, lng: f64) -> Coordinates {
        Coordinates::parse(lat, lng).unwrap()
    }

    #[test]
    fn known_vectors() {
        let p = |n| Precision::new(n).unwrap();
        assert_eq!(encode(c(57.64911, 10.40744), p(11)), "u4pruydqqvj");
        assert_eq!(encode(c(42.6, -5.6), p(5)), "ezs42");
        assert_eq!(encode(c(-25.382708, -49.265506), p(12)), "6gkzwgjzn820");
        assert_eq!(encode(c(0.0, 0.0), p(1)), "s");
        assert_eq!(encode(c(90.0, 180.0), p(12)), "zzzzzzzzzzzz");
        assert_eq!(encode(c(-90.0, -180.0), p(12)), "000000000000");
        assert!(Precision::new(0).is_none() && Precision::new(13).is_none());
    }

    #[test]
    fn decode_contains_the_point() {
        let b = decode("u4pruydqqvj").unwrap();
        assert!(b.lat_min <= 57.64911 && 57.64911 <= b.lat_max);
        assert!(b.lng_min <= 10.40744 && 10.40744 <= b.lng_max);
        assert!(decode("").is_none() && decode("a").is_none());
        assert!(decode("0000000000000").is_none());
    }

    #[test]
    fn neighbours_wrap_and_stop_at_poles() {
        let mut n = neighbours("ezs42").unwrap();
        n.sort();
        let mut want = vec![
            "ezs48", "ezs49", "ezs43", "ezs41", "ezs40", "ezefp", "ezefr", "ezefx",
        ];
        want.sort();
        assert_eq!(n, want);
        // Top-right corner of the world: 3 neighbours in the row below + wrap to the west edge.
        let n = neighbours("z").unwrap();
        assert_eq!(n.len(), 5);
        assert!(n.contains(&"b".to_string()), "{n:?}"); // wraps east → west
        assert!(n.contains(&"8".to_string()), "{n:?}");
    }

    #[test]
    fn cell_sizes() {
        let (w, h) = cell_size_m(Precision::new(6).unwrap());
        assert!(
            (w - 1223.0).abs() < 5.0 && (h - 611.0).abs() < 5.0,
            "{w} {h}"
        );
    }

    #[test]
    fn precision_for_radius_is_sane() {
        let r = |m| RadiusM::parse(m).unwrap();
        let p = precision_for_radius(c(52.5, 13.4), r(500.0)).unwrap();
        assert_eq!(p.get(), 6);
        assert!(precision_for_radius(c(89.99, 0.0), r(5000.0)).is_none());
        assert!(precision_for_radius(c(0.0, 179.99), r(50_000.0)).is_some());
    }

    #[test]
    fn cover_contains_points_near_poles_and_antimeridian() {
        let r = RadiusM::parse(50_000.0).unwrap();
        for (lat, lng) in [(90.0, 0.0), (-89.95, 180.0), (0.0, 180.0), (0.0, -180.0)] {
            let cv = cover(c(lat, lng), r);
            assert!(cv.ranges.len() as u64 <= MAX_COVER_CELLS);
            for (plat, plng) in [(lat, -180.0), (lat, 180.0), (lat - 0.1, lng)] {
                let plat = f64::clamp(plat, -90.0, 90.0);
                let k = key(plat, plng);
                assert!(
                    cv.ranges.iter().any(|&(a, z)| a <= k && k <= z),
                    "({plat},{plng}) not covered for centre ({lat},{lng})"
                );
            }
        }
    }
}
