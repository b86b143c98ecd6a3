//! Geometry and the in-memory nearby-search index.
//!
//! - [`haversine`]: the one distance function (metres, R = 6 371 008.8 m);
//! - [`geohash`]: our geohash encoder and the Z-order cell cover of a search circle;
//! - [`h3`]: the H3 cover (resolution from the radius, `grid_disk` with a verified `k`);
//! - [`index`]: [`PlaceIndex`], compact sorted arrays + a delta, searched through either cover
//!   and finished by the exact haversine filter; plus the brute-force reference.
//!
//! Invariant: a cover may over-approximate the circle but never miss a point of it; exactness
//! comes from filtering every candidate with [`haversine::Origin::distance_m`], the same function
//! the brute-force reference uses, so all three searches return identical lists.

pub mod geohash;
pub mod h3;
pub mod haversine;
pub mod index;

pub use haversine::distance_m;
pub use index::{brute_force_search, Hit, NearbyPage, NearbyQuery, Place, PlaceIndex};
