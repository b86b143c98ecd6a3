//! H3 cover: which H3 cells (hence which key ranges) can hold a match.
//!
//! Every place is keyed by the index of its **resolution-15** H3 cell. In H3's bit layout all
//! resolution-15 descendants of a cell `c` (resolution `r`) share `c`'s base cell and first `r`
//! digits, so they form one contiguous key range: `c` with the resolution field set to 15 and
//! the unused digits running from all-0 to all-7. A query at resolution `r` therefore scans, for
//! each cell of its cover, one key range.
//!
//! H3 is not an exact hierarchy: the descendants of `c` stick out of `c`'s hexagon a little.
//! The cover is computed on the *logical* hierarchy and made safe as follows:
//! - the centre cell `c0` is the resolution-`r` parent of the centre's resolution-15 cell (the
//!   same rule that files every place);
//! - the resolution `r` is the finest whose average edge is at least a quarter of the radius,
//!   so `k` stays around 2–3;
//! - `k` starts from the planar estimate and grows until **every cell of ring `k + 1` is
//!   provably out of reach**: its centre is farther from the search centre than
//!   `radius + desc_radius(r)`, where `desc_radius(r)` bounds the distance from a cell's centre
//!   to any of its resolution-15 descendants (1.5 × the largest centre-to-vertex distance of a
//!   resolution-`r` cell, measured once by enumerating every cell of resolutions 0–3 and scaled
//!   with a 25 % margin to finer ones). Because the search cap is geodesically convex, a match
//!   outside `grid_disk(c0, k)` would have to be reached through a ring-`k + 1` cell, which the
//!   check excludes. This holds next to pentagons (`grid_disk` falls back to its exact
//!   traversal there) and across the antimeridian and poles (H3 cells are spherical).
//!
//! The exact haversine filter then keeps precisely the matches. The same bound lets the index
//! skip cells whose centre is farther than `radius + desc_radius(r)` and count, without
//! computing distances, cells whose centre is nearer than `radius - desc_radius(r)`.

use super::haversine::Origin;
use crate::domain::{Coordinates, RadiusM};
use h3o::{CellIndex, LatLng, Resolution};
use std::sync::OnceLock;

/// Resolution at which places are keyed.
pub const KEY_RESOLUTION: Resolution = Resolution::Fifteen;

/// Upper bound for `k` before falling back to a coarser resolution.
const MAX_K: u32 = 48;

/// The resolution-15 key of a point.
pub fn key(lat_deg: f64, lng_deg: f64) -> u64 {
    let ll = LatLng::new(lat_deg, lng_deg).expect("validated coordinates are finite");
    u64::from(ll.to_cell(KEY_RESOLUTION))
}

/// The inclusive key range of all resolution-15 descendants of `cell`.
pub fn descendant_range(cell: CellIndex) -> (u64, u64) {
    let r = u8::from(cell.resolution()) as u32;
    let raw = u64::from(cell);
    let with_res15 = (raw & !(0xF << 52)) | (15u64 << 52);
    let mask = (1u64 << (3 * (15 - r))) - 1;
    (with_res15 & !mask, with_res15 | mask)
}

/// Largest centre-to-vertex distance of any cell, per resolution, in metres (see module docs).
fn max_circumradius_m() -> &'static [f64; 16] {
    static TABLE: OnceLock<[f64; 16]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [0.0; 16];
        let mut worst_ratio: f64 = 0.0;
        for r in 0..=3u8 {
            let res = Resolution::try_from(r).expect("valid resolution");
            let mut max: f64 = 0.0;
            for base in CellIndex::base_cells() {
                for cell in base.children(res) {
                    let c = LatLng::from(cell);
                    let o = Origin::from_degrees(c.lat(), c.lng());
                    for v in cell.boundary().iter() {
                        max = max.max(o.distance_m(v.lat(), v.lng()));
                    }
                }
            }
            table[usize::from(r)] = max * 1.01;
            if r >= 2 {
                worst_ratio = worst_ratio.max(max / res.edge_length_m());
            }
        }
        for r in 4..=15u8 {
            let res = Resolution::try_from(r).expect("valid resolution");
            table[usize::from(r)] = res.edge_length_m() * worst_ratio * 1.25;
        }
        table
    })
}

/// Computes the per-resolution cell-size table now (it is built on first use, which takes tens
/// of milliseconds in release builds); [`crate::geo::PlaceIndex::from_places`] calls this.
pub fn warm_up() {
    max_circumradius_m();
}

/// Bound on the distance from a resolution-`r` cell's centre to its resolution-15 descendants.
fn desc_radius_m(res: Resolution) -> f64 {
    1.5 * max_circumradius_m()[usize::from(u8::from(res))]
}

/// The resolution used for `radius`: the finest whose average edge is ≥ radius / 4.
pub fn resolution_for_radius(radius: RadiusM) -> Resolution {
    let target = radius.metres() / 4.0;
    (0..=15u8)
        .rev()
        .map(|r| Resolution::try_from(r).expect("valid resolution"))
        .find(|res| res.edge_length_m() >= target)
        .unwrap_or(Resolution::Zero)
}

/// The cells to scan and their key ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H3Cover {
    /// Resolution of the cover's cells.
    pub resolution: Resolution,
    /// `grid_disk` radius.
    pub k: u32,
    /// Inclusive key ranges, sorted and merged.
    pub ranges: Vec<(u64, u64)>,
}

/// The cells of the H3 cover with their centre's distance from the search centre.
#[derive(Debug, Clone, PartialEq)]
pub struct H3CoverCells {
    /// Resolution of the cover's cells.
    pub resolution: Resolution,
    /// `grid_disk` radius.
    pub k: u32,
    /// Bound on the distance from a cell's centre to any place filed under the cell.
    pub desc_radius_m: f64,
    /// The cells of `grid_disk(c0, k)` and the haversine distance of each centre, in metres.
    pub cells: Vec<(CellIndex, f64)>,
}

/// The H3 cover of the circle of `radius` around `center`, cell by cell (see the module docs).
pub fn cover_cells(center: Coordinates, radius: RadiusM) -> H3CoverCells {
    let origin = Origin::new(center);
    let centre_distance = |cell: CellIndex| {
        let c = LatLng::from(cell);
        origin.distance_m(c.lat(), c.lng())
    };
    let key15 = CellIndex::try_from(key(center.lat_deg(), center.lng_deg()))
        .expect("to_cell returns a valid cell");
    let mut res = resolution_for_radius(radius);
    loop {
        let c0 = key15.parent(res).expect("coarser resolution");
        let desc = desc_radius_m(res);
        let reach = radius.metres() + desc;
        // Planar estimate: ring j centres are at least ~1.5 edges × j away.
        let k0 = ((reach / (1.5 * res.edge_length_m())).floor() as u32).max(1);
        let mut k = k0;
        while k <= MAX_K {
            let disk: Vec<(CellIndex, u32)> = c0.grid_disk_distances(k + 1);
            let ring_clear = disk
                .iter()
                .filter(|(_, d)| *d == k + 1)
                .all(|(cell, _)| centre_distance(*cell) > reach);
            if ring_clear {
                return H3CoverCells {
                    resolution: res,
                    k,
                    desc_radius_m: desc,
                    cells: disk
                        .iter()
                        .filter(|(_, d)| *d <= k)
                        .map(|(cell, _)| (*cell, centre_distance(*cell)))
                        .collect(),
                };
            }
            k += 1;
        }
        match res.pred() {
            Some(coarser) => res = coarser,
            None => {
                // Resolution 0 with k = MAX_K spans the globe many times over, so this is not
                // reached; all base cells would be a valid cover anyway.
                return H3CoverCells {
                    resolution: res,
                    k: MAX_K,
                    desc_radius_m: desc_radius_m(res),
                    cells: CellIndex::base_cells()
                        .map(|c| (c, centre_distance(c)))
                        .collect(),
                };
            }
        }
    }
}

/// The H3 cover of the circle of `radius` around `center` as merged key ranges.
pub fn cover(center: Coordinates, radius: RadiusM) -> H3Cover {
    let cc = cover_cells(center, radius);
    let mut ranges: Vec<(u64, u64)> = cc
        .cells
        .iter()
        .map(|(cell, _)| descendant_range(*cell))
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (a, z) in ranges {
        match merged.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(a) || last.1 >= a => {
                last.1 = last.1.max(z);
            }
            _ => merged.push((a, z)),
        }
    }
    H3Cover {
        resolution: cc.resolution,
        k: cc.k,
        ranges: merged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendant_range_contains_descendants_only() {
        let ll = LatLng::new(48.85, 2.35).unwrap();
        let leaf = ll.to_cell(Resolution::Fifteen);
        for r in 0..=15u8 {
            let res = Resolution::try_from(r).unwrap();
            let parent = leaf.parent(res).unwrap();
            let (a, z) = descendant_range(parent);
            assert!(a <= u64::from(leaf) && u64::from(leaf) <= z, "res {r}");
        }
        let p = ll.to_cell(Resolution::Seven);
        let (a, z) = descendant_range(p);
        // A neighbour's descendants lie outside the range.
        for n in p.grid_disk::<Vec<_>>(1) {
            if n != p {
                let child = n.center_child(Resolution::Fifteen).unwrap();
                let k = u64::from(child);
                assert!(k < a || k > z);
            }
        }
    }

    #[test]
    fn resolution_and_k_stay_small() {
        let c = Coordinates::parse(52.5, 13.4).unwrap();
        for m in [500.0, 1000.0, 2000.0, 5000.0, 20_000.0, 50_000.0] {
            let cv = cover(c, RadiusM::parse(m).unwrap());
            assert!(cv.k <= 6, "radius {m}: k = {}", cv.k);
        }
    }

    #[test]
    fn circumradius_table_is_monotonic() {
        let t = max_circumradius_m();
        for r in 1..16 {
            assert!(t[r] < t[r - 1], "{t:?}");
        }
    }
}
