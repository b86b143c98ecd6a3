//! The in-memory place index: compact sorted arrays plus a small delta of recent writes.
//!
//! # Layout
//! An immutable `Base` holds every place at the time it was built, in struct-of-arrays form:
//! - `recs`: 24-byte records `(id, lat_e7, lng_e7, category, name offset)` sorted by geohash
//!   key — coordinates are stored losslessly as `i32` 1e-7 degrees (the domain quantises to that
//!   grid), categories are interned, names live in one string arena;
//! - `gh_sparse`: the 64-bit geohash key of every 16th record; a cover range is found by a
//!   binary search over it and a few keys recomputed from the records' coordinates (half a
//!   byte per place instead of eight);
//! - `h3_keys` + `h3_slots`: resolution-15 H3 keys sorted, with the record each belongs to;
//! - `ids`: id → record, a dense table when ids are dense (database sequences), else a sorted
//!   array.
//!
//! That is 24 + 0.5 + 12 + 4 bytes + the name per place (≈ 55 bytes with 15-byte names).
//!
//! Writes go to a small *delta*: upserted places in a hash map (plus a `BTreeSet` of their
//! geohash keys, so the delta is searched by the same cover ranges), and a "dead" bit per base
//! record that was removed or replaced. A search scans the cover of the base (skipping dead
//! records) and of the delta. When the delta grows past `max(4096, len / 32)` a background
//! thread merges base and delta into a new base (reusing the stored keys, so only new places are
//! re-keyed) and swaps it in; writes that arrive meanwhile are replayed onto the new base.
//!
//! # Search
//! Both covers over-approximate the circle; exactness comes from the haversine filter, and
//! speed from not running it on every candidate:
//! - **geohash**: the cover cells go into a best-first queue ordered by a lower bound of their
//!   distance from the centre. A cell whose lower bound exceeds the radius is dropped; a cell
//!   whose upper bound (farthest corner) is within the radius is *counted* — its records form
//!   one slot range — and only scanned if it can still contribute to the requested page; a cell
//!   across the circle is split in two along the Z-order until it holds ≤ 24 records, which are
//!   then filtered one by one. The work is proportional to the circle's *perimeter* plus the
//!   page, not to the number of matches, yet `total` stays exact.
//! - **H3**: the same with the `grid_disk` cells and the bound on a cell's descendants (see
//!   [`h3`]): cells are visited nearest first, skipped, counted or filtered.
//!
//! Every decision near a bound falls back to the exact per-place distance (1 mm margin).
//!
//! # Concurrency
//! `PlaceIndex` is `Send + Sync` and cheap to share behind an `Arc`. State sits behind one
//! `RwLock`: searches hold the read lock for the duration of a search (tens of µs), writes hold
//! the write lock for a hash-map insert. Merging happens outside the lock.
//!
//! # Search semantics
//! Every place whose haversine distance to the centre is ≤ the radius (and whose category
//! matches, if a category is given), ordered by `(distance, id)`. `total` is the exact number of
//! such places; the page holds the first `limit` of them strictly after the cursor position;
//! `next_cursor` is `None` on the last page. Because the order is a total order on
//! `(distance, id)`, following cursors yields every result exactly once, and places that do not
//! change between requests keep their position even while others are written.
//! [`brute_force_search`] implements the same contract by a full scan and is the reference the
//! property tests compare both cell indexes against.

use super::haversine::Origin;
use super::{geohash, h3};
use crate::domain::{
    Business, BusinessId, Category, Coordinates, Cursor, CursorScope, DomainError, IndexKind,
    Latitude, Limit, Longitude, RadiusM, DEGREE_SCALE,
};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A searchable place: what the index needs of a business.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// Business id.
    pub id: BusinessId,
    /// Display name.
    pub name: String,
    /// Category.
    pub category: Category,
    /// Location.
    pub coordinates: Coordinates,
}

impl From<&Business> for Place {
    fn from(b: &Business) -> Self {
        Self {
            id: b.id,
            name: b.name.as_str().to_owned(),
            category: b.category.clone(),
            coordinates: b.coordinates,
        }
    }
}

impl From<Business> for Place {
    fn from(b: Business) -> Self {
        Self {
            id: b.id,
            name: b.name.into(),
            category: b.category,
            coordinates: b.coordinates,
        }
    }
}

/// A nearby search.
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyQuery {
    /// Search centre.
    pub center: Coordinates,
    /// Search radius.
    pub radius: RadiusM,
    /// Page size.
    pub limit: Limit,
    /// Only places of this category, if given.
    pub category: Option<Category>,
    /// Which cell index finds the candidates (results are identical).
    pub index: IndexKind,
    /// Continue after this cursor (from a previous page of the same query).
    pub after: Option<Cursor>,
}

impl NearbyQuery {
    /// A first-page query with default limit, no category and the default index.
    pub fn new(center: Coordinates, radius: RadiusM) -> Self {
        Self {
            center,
            radius,
            limit: Limit::default(),
            category: None,
            index: IndexKind::default(),
            after: None,
        }
    }

    /// The cursor scope of this query (centre, radius, category).
    pub fn scope(&self) -> CursorScope {
        CursorScope::new(self.center, self.radius, self.category.as_ref())
    }

    /// The cursor position, if any; a `cursor` error if the cursor belongs to another query.
    fn position(&self) -> Result<Option<(f64, i64)>, DomainError> {
        self.after
            .as_ref()
            .map(|c| c.position(self.scope()).map(|(d, id)| (d, id.get())))
            .transpose()
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Hit {
    /// Business id.
    #[schema(value_type = i64, minimum = 1)]
    pub id: BusinessId,
    /// Display name.
    pub name: String,
    /// Category.
    #[schema(value_type = String)]
    pub category: Category,
    /// Latitude in degrees.
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    /// Longitude in degrees.
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
    /// Haversine distance from the search centre, in metres.
    #[schema(minimum = 0)]
    pub distance_m: f64,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NearbyPage {
    /// Exact number of places within the radius.
    pub total: usize,
    /// This page, ordered by `(distance_m, id)`.
    // At most `Limit::MAX`: a test in `routes/openapi.rs` checks the literal.
    #[schema(max_items = 200)]
    pub results: Vec<Hit>,
    /// Cursor for the next page; null on the last page.
    #[schema(value_type = Option<String>, required = true)]
    pub next_cursor: Option<Cursor>,
}

// ---------------------------------------------------------------------------------------------
// Base: the immutable, compact part.

/// One place in the base. 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Rec {
    id: i64,
    lat_e7: i32,
    lng_e7: i32,
    cat: u32,
    name: u32,
}

#[inline]
fn deg(e7: i32) -> f64 {
    f64::from(e7) / DEGREE_SCALE
}

/// The geohash key of a place.
fn place_key(p: &Place) -> u64 {
    geohash::key(p.coordinates.lat_deg(), p.coordinates.lng_deg())
}

/// id → record slot.
#[derive(Debug)]
enum IdMap {
    /// `slots[id - min]`, `u32::MAX` when absent.
    Dense { min: i64, slots: Vec<u32> },
    /// Sorted ids and their slots.
    Sorted { ids: Vec<i64>, slots: Vec<u32> },
}

impl IdMap {
    fn build(mut pairs: Vec<(i64, u32)>) -> Self {
        pairs.sort_unstable();
        let (Some(first), Some(last)) = (pairs.first(), pairs.last()) else {
            return Self::Sorted {
                ids: Vec::new(),
                slots: Vec::new(),
            };
        };
        let span = (last.0 - first.0) as u128 + 1;
        if span <= 2 * pairs.len() as u128 + 64 {
            let min = first.0;
            let mut slots = vec![u32::MAX; span as usize];
            for (id, slot) in pairs {
                slots[(id - min) as usize] = slot;
            }
            Self::Dense { min, slots }
        } else {
            let (ids, slots) = pairs.into_iter().unzip();
            Self::Sorted { ids, slots }
        }
    }

    fn get(&self, id: i64) -> Option<u32> {
        match self {
            Self::Dense { min, slots } => {
                let i = id.checked_sub(*min)?;
                let s = *slots.get(usize::try_from(i).ok()?)?;
                (s != u32::MAX).then_some(s)
            }
            Self::Sorted { ids, slots } => ids.binary_search(&id).ok().map(|i| slots[i]),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Dense { slots, .. } => slots.capacity() * 4,
            Self::Sorted { ids, slots } => ids.capacity() * 8 + slots.capacity() * 4,
        }
    }
}

/// One sparse geohash key per this many records.
const GH_STRIDE: usize = 16;

/// A place on its way into a base, with whatever keys are already known.
struct Item {
    id: i64,
    lat_e7: i32,
    lng_e7: i32,
    category: Category,
    name: String,
    gh: u64,
    h3: Option<u64>,
}

impl Item {
    fn from_place(p: Place) -> Self {
        let (lat, lng) = (p.coordinates.lat_deg(), p.coordinates.lng_deg());
        Self {
            id: p.id.get(),
            lat_e7: p.coordinates.lat().e7(),
            lng_e7: p.coordinates.lng().e7(),
            category: p.category,
            name: p.name,
            gh: geohash::key(lat, lng),
            h3: None,
        }
    }
}

#[derive(Debug, Default)]
struct Base {
    recs: Vec<Rec>,
    gh_sparse: Vec<u64>,
    h3_keys: Vec<u64>,
    h3_slots: Vec<u32>,
    names: String,
    categories: Vec<Category>,
    category_ids: HashMap<Category, u32>,
    ids: Option<IdMap>,
}

impl Base {
    /// Builds a base; later items win over earlier ones with the same id.
    fn build(mut items: Vec<Item>) -> Self {
        // Deduplicate by id, keeping the last occurrence.
        let mut order: Vec<u32> = (0..items.len() as u32).collect();
        order.sort_by_key(|&i| (items[i as usize].id, std::cmp::Reverse(i)));
        order.dedup_by_key(|&mut i| items[i as usize].id);
        if order.len() != items.len() {
            let mut keep = vec![false; items.len()];
            for &i in &order {
                keep[i as usize] = true;
            }
            let mut it = keep.into_iter();
            items.retain(|_| it.next().unwrap_or(false));
        }
        compute_h3_keys(&mut items);

        // Records in geohash order (ties by id for determinism).
        items.sort_unstable_by_key(|it| (it.gh, it.id));
        let n = items.len();
        let mut base = Base {
            recs: Vec::with_capacity(n),
            gh_sparse: Vec::with_capacity(n / GH_STRIDE + 1),
            names: String::with_capacity(items.iter().map(|i| i.name.len()).sum()),
            ..Base::default()
        };
        let mut h3_pairs: Vec<(u64, u32)> = Vec::with_capacity(n);
        let mut id_pairs: Vec<(i64, u32)> = Vec::with_capacity(n);
        for (slot, it) in items.into_iter().enumerate() {
            let slot = slot as u32;
            let cat = match base.category_ids.get(&it.category) {
                Some(&c) => c,
                None => {
                    let c = base.categories.len() as u32;
                    base.categories.push(it.category.clone());
                    base.category_ids.insert(it.category, c);
                    c
                }
            };
            let name = u32::try_from(base.names.len()).expect("name arena below 4 GiB");
            base.names.push_str(&it.name);
            base.recs.push(Rec {
                id: it.id,
                lat_e7: it.lat_e7,
                lng_e7: it.lng_e7,
                cat,
                name,
            });
            if (slot as usize).is_multiple_of(GH_STRIDE) {
                base.gh_sparse.push(it.gh);
            }
            h3_pairs.push((it.h3.expect("computed above"), slot));
            id_pairs.push((it.id, slot));
        }
        h3_pairs.sort_unstable();
        (base.h3_keys, base.h3_slots) = h3_pairs.into_iter().unzip();
        base.ids = Some(IdMap::build(id_pairs));
        base.names.shrink_to_fit();
        base
    }

    fn len(&self) -> usize {
        self.recs.len()
    }

    /// The geohash key of a record, recomputed from its coordinates (exactly as at build time).
    #[inline]
    fn gh_key(&self, slot: usize) -> u64 {
        let r = &self.recs[slot];
        geohash::key(deg(r.lat_e7), deg(r.lng_e7))
    }

    /// The first slot in `lo..hi` whose key is `>= key` (`hi` if none); keys are sorted.
    fn gh_partition(&self, mut lo: usize, mut hi: usize, key: u64) -> usize {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.gh_key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The first slot whose key is `>= key` (`len()` if none).
    fn gh_lower_bound(&self, key: u64) -> usize {
        let j = self.gh_sparse.partition_point(|&k| k < key);
        let lo = if j == 0 { 0 } else { (j - 1) * GH_STRIDE + 1 };
        let hi = (j * GH_STRIDE).min(self.recs.len());
        self.gh_partition(lo.min(hi), hi, key)
    }

    /// The slots whose keys lie in the inclusive range `a..=z`.
    fn gh_range(&self, a: u64, z: u64) -> (usize, usize) {
        let lo = self.gh_lower_bound(a);
        let hi = match z.checked_add(1) {
            Some(z1) => self.gh_lower_bound(z1),
            None => self.recs.len(),
        };
        (lo, hi.max(lo))
    }

    fn slot(&self, id: BusinessId) -> Option<u32> {
        self.ids.as_ref()?.get(id.get())
    }

    fn name(&self, slot: u32) -> &str {
        let s = slot as usize;
        let start = self.recs[s].name as usize;
        let end = self
            .recs
            .get(s + 1)
            .map_or(self.names.len(), |r| r.name as usize);
        &self.names[start..end]
    }

    fn coordinates(&self, slot: u32) -> Coordinates {
        let r = &self.recs[slot as usize];
        Coordinates::new(
            Latitude::from_e7(r.lat_e7).expect("stored from a valid latitude"),
            Longitude::from_e7(r.lng_e7).expect("stored from a valid longitude"),
        )
    }

    fn place(&self, slot: u32) -> Place {
        let r = &self.recs[slot as usize];
        Place {
            id: BusinessId::parse(r.id).expect("stored from a valid id"),
            name: self.name(slot).to_owned(),
            category: self.categories[r.cat as usize].clone(),
            coordinates: self.coordinates(slot),
        }
    }

    fn bytes(&self) -> usize {
        self.recs.capacity() * std::mem::size_of::<Rec>()
            + self.gh_sparse.capacity() * 8
            + self.h3_keys.capacity() * 8
            + self.h3_slots.capacity() * 4
            + self.names.capacity()
            + self.ids.as_ref().map_or(0, IdMap::bytes)
            + self
                .categories
                .iter()
                .map(|c| 2 * (c.as_str().len() + 32))
                .sum::<usize>()
    }
}

/// Fills in missing H3 keys, on all cores (it is the expensive part of a build).
fn compute_h3_keys(items: &mut [Item]) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1024);
    std::thread::scope(|s| {
        for part in items.chunks_mut(chunk) {
            s.spawn(move || {
                for it in part.iter_mut().filter(|it| it.h3.is_none()) {
                    it.h3 = Some(h3::key(deg(it.lat_e7), deg(it.lng_e7)));
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Mutable state.

#[derive(Debug, Default)]
struct Inner {
    base: Arc<Base>,
    /// One bit per base record: removed or replaced by a delta entry.
    dead: Vec<u64>,
    dead_count: usize,
    delta: HashMap<BusinessId, Place>,
    /// `(geohash key, id)` of every delta entry, to search the delta by cover ranges.
    delta_keys: BTreeSet<(u64, BusinessId)>,
    /// `Some` while a merge runs: ids written since it started.
    touched: Option<Vec<BusinessId>>,
}

impl Inner {
    fn is_dead(&self, slot: u32) -> bool {
        self.dead_count > 0 && (self.dead[(slot / 64) as usize] >> (slot % 64)) & 1 == 1
    }

    fn kill(&mut self, slot: u32) {
        if self.dead.is_empty() {
            self.dead = vec![0; self.base.len().div_ceil(64)];
        }
        let w = &mut self.dead[(slot / 64) as usize];
        let bit = 1u64 << (slot % 64);
        if *w & bit == 0 {
            *w |= bit;
            self.dead_count += 1;
        }
    }

    fn delta_insert(&mut self, p: Place) {
        let (key, id) = (place_key(&p), p.id);
        if let Some(old) = self.delta.insert(id, p) {
            self.delta_keys.remove(&(place_key(&old), id));
        }
        self.delta_keys.insert((key, id));
    }

    fn delta_remove(&mut self, id: BusinessId) -> bool {
        match self.delta.remove(&id) {
            Some(old) => {
                self.delta_keys.remove(&(place_key(&old), id));
                true
            }
            None => false,
        }
    }

    fn live_base_slot(&self, id: BusinessId) -> Option<u32> {
        self.base.slot(id).filter(|&s| !self.is_dead(s))
    }

    fn needs_merge(&self) -> bool {
        self.touched.is_none()
            && self.delta.len() + self.dead_count > (self.base.len() / 32).max(MERGE_MIN)
    }
}

// The HTTP layer shares one index between all request tasks.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PlaceIndex>();
};

/// Smallest delta (writes) that triggers a background merge.
const MERGE_MIN: usize = 4096;

/// The in-memory nearby-search index. See the module docs.
///
/// Cloning is cheap and gives another handle to the *same* index (like an `Arc`).
#[derive(Debug, Clone, Default)]
pub struct PlaceIndex {
    inner: Arc<RwLock<Inner>>,
}

impl PlaceIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bulk-builds an index; for duplicate ids the last place wins.
    pub fn from_places(places: impl IntoIterator<Item = Place>) -> Self {
        let items: Vec<Item> = places.into_iter().map(Item::from_place).collect();
        let base = Base::build(items);
        h3::warm_up();
        Self {
            inner: Arc::new(RwLock::new(Inner {
                base: Arc::new(base),
                ..Inner::default()
            })),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts or replaces the place with `place.id`.
    pub fn upsert(&self, place: Place) {
        let id = place.id;
        let merge = {
            let mut g = self.write();
            if let Some(slot) = g.base.slot(id) {
                g.kill(slot);
            }
            g.delta_insert(place);
            if let Some(t) = g.touched.as_mut() {
                t.push(id);
            }
            g.needs_merge()
        };
        if merge {
            self.spawn_merge();
        }
    }

    /// Removes the place `id`; `true` if it was present.
    pub fn remove(&self, id: BusinessId) -> bool {
        let merge;
        let existed = {
            let mut g = self.write();
            let in_base = g.live_base_slot(id);
            if let Some(slot) = in_base {
                g.kill(slot);
            }
            let in_delta = g.delta_remove(id);
            if let Some(t) = g.touched.as_mut() {
                t.push(id);
            }
            merge = g.needs_merge();
            in_base.is_some() || in_delta
        };
        if merge {
            self.spawn_merge();
        }
        existed
    }

    /// The place `id`, if present.
    pub fn get(&self, id: BusinessId) -> Option<Place> {
        let g = self.read();
        if let Some(p) = g.delta.get(&id) {
            return Some(p.clone());
        }
        g.live_base_slot(id).map(|s| g.base.place(s))
    }

    /// Number of places.
    pub fn len(&self) -> usize {
        let g = self.read();
        g.base.len() - g.dead_count + g.delta.len()
    }

    /// `true` when the index holds no place.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate heap memory used by the index, in bytes.
    pub fn approx_bytes(&self) -> usize {
        let g = self.read();
        let delta: usize = g
            .delta
            .values()
            .map(|p| std::mem::size_of::<Place>() + 24 + p.name.len() + p.category.as_str().len())
            .sum();
        g.base.bytes() + g.dead.capacity() * 8 + delta
    }

    /// Merges the delta into a new base now, on this thread (a background merge is started
    /// automatically when the delta grows; this is for tests and benchmarks).
    pub fn compact(&self) {
        merge(&self.inner);
    }

    fn spawn_merge(&self) {
        let inner = Arc::clone(&self.inner);
        std::thread::Builder::new()
            .name("place-index-merge".into())
            .spawn(move || merge(&inner))
            .map(drop)
            .unwrap_or_else(|_| merge(&self.inner));
    }

    /// Answers a nearby query from the cell index chosen by `query.index`.
    ///
    /// Fails only for a cursor that was not issued for this query (field `cursor`).
    pub fn search(&self, query: &NearbyQuery) -> Result<NearbyPage, DomainError> {
        let pos = query.position()?;
        // Covers are computed before taking the lock, to hold it as briefly as possible.
        let cover = match query.index {
            IndexKind::Geohash => Cover::Geohash(geohash::cover_cells(query.center, query.radius)),
            IndexKind::H3 => Cover::H3(h3::cover_cells(query.center, query.radius)),
        };
        let g = self.read();
        let mut col = Collector::new(query, pos);
        let base = &*g.base;
        let cat = match &query.category {
            None => Some(None),
            Some(c) => base.category_ids.get(c).map(|&id| Some(id)),
        };
        if let Some(cat) = cat {
            let mut cs = CellSearch {
                base,
                inner: &g,
                cat,
                col: &mut col,
            };
            match cover {
                Cover::Geohash(cells) => cs.run_geohash(query, cells),
                Cover::H3(cells) => cs.run_h3(query, cells),
            }
        }
        col.offer_delta_cover(&g, query);
        Ok(col.finish(query, |src| match src {
            Src::Base(slot) => base.place(slot),
            Src::Delta(id) => g.delta[&id].clone(),
            Src::Slice(_) => unreachable!("no slice in an index search"),
        }))
    }

    /// The reference implementation: the same contract as [`PlaceIndex::search`], by scanning
    /// every place.
    pub fn brute_force_search(&self, query: &NearbyQuery) -> Result<NearbyPage, DomainError> {
        let pos = query.position()?;
        let g = self.read();
        let base = &*g.base;
        let mut col = Collector::new(query, pos);
        for (slot, r) in base.recs.iter().enumerate() {
            let slot = slot as u32;
            if g.is_dead(slot)
                || query
                    .category
                    .as_ref()
                    .is_some_and(|c| c != &base.categories[r.cat as usize])
            {
                continue;
            }
            col.offer(deg(r.lat_e7), deg(r.lng_e7), r.id, Src::Base(slot));
        }
        col.offer_delta(&g.delta, query.category.as_ref());
        Ok(col.finish(query, |src| match src {
            Src::Base(slot) => base.place(slot),
            Src::Delta(id) => g.delta[&id].clone(),
            Src::Slice(_) => unreachable!("no slice in an index search"),
        }))
    }
}

/// Merges base and delta into a new base and swaps it in (see the module docs).
fn merge(inner: &RwLock<Inner>) {
    let lock_w = || inner.write().unwrap_or_else(|e| e.into_inner());
    let (base, dead, delta) = {
        let mut g = lock_w();
        if g.touched.is_some() {
            return; // another merge is running
        }
        g.touched = Some(Vec::new());
        let delta: Vec<Place> = g.delta.values().cloned().collect();
        (Arc::clone(&g.base), g.dead.clone(), delta)
    };
    // Should the build panic, forget the merge (the state was not touched) so later writes can
    // start another one instead of recording `touched` ids forever.
    struct Abandon<'a>(&'a RwLock<Inner>, bool);
    impl Drop for Abandon<'_> {
        fn drop(&mut self) {
            if self.1 {
                self.0.write().unwrap_or_else(|e| e.into_inner()).touched = None;
            }
        }
    }
    let mut abandon = Abandon(inner, true);
    let is_dead = |slot: usize| !dead.is_empty() && (dead[slot / 64] >> (slot % 64)) & 1 == 1;
    let mut items: Vec<Item> = Vec::with_capacity(base.len() + delta.len());
    let mut h3_of = vec![0u64; base.len()];
    for (&k, &slot) in base.h3_keys.iter().zip(&base.h3_slots) {
        h3_of[slot as usize] = k;
    }
    for (slot, r) in base.recs.iter().enumerate() {
        if is_dead(slot) {
            continue;
        }
        items.push(Item {
            id: r.id,
            lat_e7: r.lat_e7,
            lng_e7: r.lng_e7,
            category: base.categories[r.cat as usize].clone(),
            name: base.name(slot as u32).to_owned(),
            gh: geohash::key(deg(r.lat_e7), deg(r.lng_e7)),
            h3: Some(h3_of[slot]),
        });
    }
    drop(h3_of);
    items.extend(delta.into_iter().map(Item::from_place));
    let new_base = Arc::new(Base::build(items));

    abandon.1 = false;
    let mut g = lock_w();
    let touched = g.touched.take().unwrap_or_default();
    let mut next = Inner {
        base: new_base,
        ..Inner::default()
    };
    for id in touched {
        if let Some(slot) = next.base.slot(id) {
            next.kill(slot);
        }
        if let Some(p) = g.delta.get(&id) {
            next.delta_insert(p.clone());
        }
    }
    *g = next;
}

// ---------------------------------------------------------------------------------------------
// Geohash search: best-first over Z-order cells, counting whole cells that lie inside the circle.

/// Margin (metres) for cell-versus-circle decisions: far above f64 rounding of the haversine,
/// far below anything that matters. Decisions within the margin fall back to exact per-place
/// distances, so the margin can only cost time, never correctness.
const CELL_MARGIN_M: f64 = 1e-3;

/// Widening of a cell's bounds, in degrees, absorbing rounding in the key computation.
const CELL_EPS_DEG: f64 = 1e-9;

/// Boundary cells with at most this many records are scanned instead of split further.
const SPLIT_MIN: u32 = 24;

/// A cell waiting in the best-first queue, ordered by its distance lower bound (nearest first).
#[derive(Debug, Clone, Copy)]
struct CellTask {
    lb: f64,
    ub: f64,
    prefix: u64,
    bits: u32,
    lo: u32,
    hi: u32,
}

impl PartialEq for CellTask {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for CellTask {}
impl PartialOrd for CellTask {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for CellTask {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap, we pop the nearest cell first.
        o.lb.total_cmp(&self.lb).then(o.prefix.cmp(&self.prefix))
    }
}

/// The geohash search (see the module docs): start from the cover cells; a cell entirely
/// outside the circle is dropped; a cell entirely inside is *counted* (no distances) unless it
/// can still contribute to the page; a boundary cell is split in two along the Z-order until it
/// is small, then its places are filtered exactly.
struct CellSearch<'a> {
    base: &'a Base,
    inner: &'a Inner,
    cat: Option<u32>,
    col: &'a mut Collector,
}

/// A search cover, computed before the index is locked.
enum Cover {
    Geohash((u32, Vec<u64>)),
    H3(h3::H3CoverCells),
}

/// Records of a cell: a slot range (geohash order) or a range of `h3_slots`.
#[derive(Debug, Clone, Copy)]
enum Slots {
    Direct(u32, u32),
    Indirect(u32, u32),
}

impl Slots {
    fn len(self) -> usize {
        match self {
            Self::Direct(lo, hi) | Self::Indirect(lo, hi) => (hi - lo) as usize,
        }
    }

    fn iter(self, base: &Base) -> impl Iterator<Item = u32> + '_ {
        let (direct, indirect) = match self {
            Self::Direct(lo, hi) => (lo..hi, &base.h3_slots[..0]),
            Self::Indirect(lo, hi) => (0..0, &base.h3_slots[lo as usize..hi as usize]),
        };
        direct.chain(indirect.iter().copied())
    }
}

impl CellSearch<'_> {
    /// The H3 search: the cover's cells nearest first; a cell is skipped, counted or filtered
    /// by the bound on its places' distance from its centre (see [`h3`]).
    fn run_h3(&mut self, q: &NearbyQuery, cc: h3::H3CoverCells) {
        let r = q.radius.metres();
        let keys = &self.base.h3_keys;
        let mut tasks: Vec<(f64, f64, u32, u32)> = Vec::with_capacity(cc.cells.len());
        for (cell, d) in cc.cells {
            let lb = (d - cc.desc_radius_m).max(0.0);
            if lb > r + CELL_MARGIN_M {
                continue;
            }
            let (a, z) = h3::descendant_range(cell);
            let lo = keys.partition_point(|&k| k < a);
            let hi = lo + keys[lo..].partition_point(|&k| k <= z);
            if lo < hi {
                tasks.push((lb, d + cc.desc_radius_m, lo as u32, hi as u32));
            }
        }
        tasks.sort_by(|x, y| x.0.total_cmp(&y.0));
        for (lb, ub, lo, hi) in tasks {
            if ub <= r - CELL_MARGIN_M {
                self.inside(lb, ub, Slots::Indirect(lo, hi));
            } else {
                self.scan(Slots::Indirect(lo, hi));
            }
        }
    }

    fn run_geohash(&mut self, q: &NearbyQuery, (bits, cells): (u32, Vec<u64>)) {
        let (lat0, lng0) = (q.center.lat_deg(), q.center.lng_deg());
        let lat0_rad = lat0.to_radians();
        let cos_lat0 = lat0_rad.cos();
        let r = q.radius.metres();
        let base = self.base;
        let o = self.col.origin;
        let bounds = |prefix: u64, bits: u32| -> (f64, f64) {
            let b = geohash::cell_bounds(prefix, bits);
            let lat_min = (b.lat_min - CELL_EPS_DEG).max(-90.0);
            let lat_max = (b.lat_max + CELL_EPS_DEG).min(90.0);
            let lng_min = b.lng_min - CELL_EPS_DEG;
            let lng_max = b.lng_max + CELL_EPS_DEG;
            let w = lng_max - lng_min;
            let a = (lng_min - lng0).rem_euclid(360.0);
            // Lower bound: h ≥ sin²(Δφmin/2) + cos φ0 · min cos φ · sin²(Δλmin/2).
            let (p1, p2) = (lat_min.to_radians(), lat_max.to_radians());
            let dphi = if lat0_rad < p1 {
                p1 - lat0_rad
            } else if lat0_rad > p2 {
                lat0_rad - p2
            } else {
                0.0
            };
            let dlam_deg = if a == 0.0 || a + w >= 360.0 {
                0.0
            } else {
                a.min(360.0 - (a + w))
            };
            let cos_min = p1.cos().min(p2.cos()).max(0.0);
            let (s1, s2) = ((dphi * 0.5).sin(), (dlam_deg.to_radians() * 0.5).sin());
            let h = s1 * s1 + cos_lat0 * cos_min * s2 * s2;
            let lb = 2.0 * super::haversine::EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin();
            // Upper bound: the farthest corner, valid while the cell stays within 90° of
            // longitude of the centre (then distance grows with |Δλ| along every parallel and
            // peaks at an end of every meridian segment).
            let a_s = if a > 180.0 { a - 360.0 } else { a };
            let b_s = a_s + w;
            let ub = if a_s.abs() < 90.0 && b_s.abs() < 90.0 {
                o.distance_m(lat_min, lng_min)
                    .max(o.distance_m(lat_min, lng_max))
                    .max(o.distance_m(lat_max, lng_min))
                    .max(o.distance_m(lat_max, lng_max))
            } else {
                f64::INFINITY
            };
            (lb, ub)
        };
        let mut queue: BinaryHeap<CellTask> = BinaryHeap::new();
        let push = |queue: &mut BinaryHeap<CellTask>, prefix: u64, bits: u32, lo: u32, hi: u32| {
            if lo >= hi {
                return;
            }
            let (lb, ub) = bounds(prefix, bits);
            if lb <= r + CELL_MARGIN_M {
                queue.push(CellTask {
                    lb,
                    ub,
                    prefix,
                    bits,
                    lo,
                    hi,
                });
            }
        };
        for prefix in cells {
            let (a, z) = geohash::cell_key_range(prefix, bits);
            let (lo, hi) = base.gh_range(a, z);
            push(&mut queue, prefix, bits, lo as u32, hi as u32);
        }
        while let Some(t) = queue.pop() {
            if t.ub <= r - CELL_MARGIN_M {
                self.inside(t.lb, t.ub, Slots::Direct(t.lo, t.hi));
            } else if t.hi - t.lo <= SPLIT_MIN || t.bits >= 64 {
                self.scan(Slots::Direct(t.lo, t.hi));
            } else {
                let bits = t.bits + 1;
                let (left, right) = (t.prefix << 1, (t.prefix << 1) | 1);
                let split_key = geohash::cell_key_range(right, bits).0;
                let m = base.gh_partition(t.lo as usize, t.hi as usize, split_key) as u32;
                push(&mut queue, left, bits, t.lo, m);
                push(&mut queue, right, bits, m, t.hi);
            }
        }
    }

    /// A cell entirely within the radius.
    fn inside(&mut self, lb: f64, ub: f64, slots: Slots) {
        let col = &*self.col;
        if col.pos.is_some_and(|(pd, _)| ub < pd - CELL_MARGIN_M) {
            // Entirely before the cursor: it only counts.
            let n = self.count(slots);
            self.col.total += n;
            return;
        }
        let after_all = col.pos.is_none_or(|(pd, _)| lb > pd + CELL_MARGIN_M);
        let page_full_and_nearer = col.heap.len() == col.k
            && col
                .heap
                .peek()
                .is_some_and(|top| top.d < lb - CELL_MARGIN_M);
        if after_all && page_full_and_nearer {
            let n = self.count(slots);
            self.col.total += n;
            self.col.after += n;
            return;
        }
        self.scan(slots);
    }

    /// Live records of the category among `slots`.
    fn count(&self, slots: Slots) -> usize {
        if self.cat.is_none() && self.inner.dead_count == 0 {
            return slots.len();
        }
        slots
            .iter(self.base)
            .filter(|&s| {
                !self.inner.is_dead(s)
                    && self.cat.is_none_or(|c| c == self.base.recs[s as usize].cat)
            })
            .count()
    }

    /// Exact filter of every record among `slots`.
    fn scan(&mut self, slots: Slots) {
        for slot in slots.iter(self.base) {
            if self.inner.is_dead(slot) {
                continue;
            }
            let r = &self.base.recs[slot as usize];
            if self.cat.is_some_and(|c| c != r.cat) {
                continue;
            }
            self.col
                .offer(deg(r.lat_e7), deg(r.lng_e7), r.id, Src::Base(slot));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Collecting matches: exact filter, exact count, top-k after the cursor.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Base(u32),
    Delta(BusinessId),
    Slice(u32),
}

#[derive(Debug, Clone, Copy)]
struct Cand {
    d: f64,
    id: i64,
    src: Src,
}

impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.d.total_cmp(&o.d).then(self.id.cmp(&o.id))
    }
}

struct Collector {
    origin: Origin,
    radius_m: f64,
    /// Candidates with a larger haversine term are out of range (checked before `asin`).
    h_max: f64,
    pos: Option<(f64, i64)>,
    k: usize,
    total: usize,
    after: usize,
    heap: BinaryHeap<Cand>,
}

impl Collector {
    fn new(q: &NearbyQuery, pos: Option<(f64, i64)>) -> Self {
        Self {
            origin: Origin::new(q.center),
            radius_m: q.radius.metres(),
            h_max: super::haversine::h_bound(q.radius.metres()),
            pos,
            k: q.limit.get(),
            total: 0,
            after: 0,
            heap: BinaryHeap::with_capacity(q.limit.get() + 1),
        }
    }

    #[inline]
    fn offer(&mut self, lat: f64, lng: f64, id: i64, src: Src) {
        let h = self.origin.h(lat, lng);
        if h > self.h_max {
            return;
        }
        let d = super::haversine::distance_from_h(h);
        if d > self.radius_m {
            return;
        }
        self.total += 1;
        if let Some((pd, pid)) = self.pos {
            if d < pd || (d == pd && id <= pid) {
                return;
            }
        }
        self.after += 1;
        let c = Cand { d, id, src };
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if c < *top {
                *top = c;
            }
        }
    }

    /// The delta entries within the geohash cover of the query (all of them when few).
    fn offer_delta_cover(&mut self, inner: &Inner, q: &NearbyQuery) {
        let cat = q.category.as_ref();
        if inner.delta.len() <= 64 {
            return self.offer_delta(&inner.delta, cat);
        }
        let (first, last) = (
            BusinessId::parse(1).expect("valid"),
            BusinessId::parse(i64::MAX).expect("valid"),
        );
        for (a, z) in geohash::cover(q.center, q.radius).ranges {
            for (_, id) in inner.delta_keys.range((a, first)..=(z, last)) {
                let p = &inner.delta[id];
                if cat.is_some_and(|c| c != &p.category) {
                    continue;
                }
                let c = p.coordinates;
                self.offer(c.lat_deg(), c.lng_deg(), p.id.get(), Src::Delta(p.id));
            }
        }
    }

    /// Every delta entry.
    fn offer_delta(&mut self, delta: &HashMap<BusinessId, Place>, cat: Option<&Category>) {
        for p in delta.values() {
            if cat.is_some_and(|c| c != &p.category) {
                continue;
            }
            let c = p.coordinates;
            self.offer(c.lat_deg(), c.lng_deg(), p.id.get(), Src::Delta(p.id));
        }
    }

    fn finish(self, q: &NearbyQuery, place: impl Fn(Src) -> Place) -> NearbyPage {
        let more = self.after > self.heap.len();
        let cands = self.heap.into_sorted_vec();
        let next_cursor = match cands.last() {
            Some(last) if more => Some(Cursor::new(
                q.scope(),
                last.d,
                BusinessId::parse(last.id).expect("stored ids are valid"),
            )),
            _ => None,
        };
        let results = cands
            .into_iter()
            .map(|c| {
                let p = place(c.src);
                Hit {
                    id: p.id,
                    lat: p.coordinates.lat_deg(),
                    lng: p.coordinates.lng_deg(),
                    name: p.name,
                    category: p.category,
                    distance_m: c.d,
                }
            })
            .collect();
        NearbyPage {
            total: self.total,
            results,
            next_cursor,
        }
    }
}

/// The reference search over a plain slice of places (same contract as
/// [`PlaceIndex::search`]); ids are assumed unique.
pub fn brute_force_search(
    places: &[Place],
    query: &NearbyQuery,
) -> Result<NearbyPage, DomainError> {
    let pos = query.position()?;
    let mut col = Collector::new(query, pos);
    for (i, p) in places.iter().enumerate() {
        if query.category.as_ref().is_some_and(|c| c != &p.category) {
            continue;
        }
        let c = p.coordinates;
        col.offer(c.lat_deg(), c.lng_deg(), p.id.get(), Src::Slice(i as u32));
    }
    Ok(col.finish(query, |src| match src {
        Src::Slice(i) => places[i as usize].clone(),
        _ => unreachable!("only slice entries"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn place(id: i64, lat: f64, lng: f64) -> Place {
        Place {
            id: BusinessId::parse(id).unwrap(),
            name: format!("n{id}"),
            category: Category::parse(if id % 2 == 0 { "even" } else { "odd" }).unwrap(),
            coordinates: Coordinates::parse(lat, lng).unwrap(),
        }
    }

    #[test]
    fn background_merge_folds_the_delta_and_keeps_later_writes() {
        let index = PlaceIndex::new();
        let n = MERGE_MIN as i64 + 1000;
        for i in 1..=n {
            let f = i as f64 * 1e-5;
            index.upsert(place(i, 48.0 + f, 2.0 - f));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            {
                let g = index.read();
                if g.touched.is_none() && g.base.len() > 0 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "merge did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        {
            let g = index.read();
            assert!(g.base.len() > MERGE_MIN, "{}", g.base.len());
            assert!(g.delta.len() < 1001, "{}", g.delta.len());
        }
        assert!(index.remove(BusinessId::parse(1).unwrap()));
        assert!(!index.remove(BusinessId::parse(1).unwrap()));
        index.upsert(place(2, 48.5, 2.5));
        assert_eq!(index.len(), n as usize - 1);
        assert_eq!(
            index
                .get(BusinessId::parse(2).unwrap())
                .unwrap()
                .coordinates
                .lat_deg(),
            48.5
        );
        for kind in [IndexKind::Geohash, IndexKind::H3] {
            for cat in [None, Some(Category::parse("even").unwrap())] {
                let q = NearbyQuery {
                    index: kind,
                    category: cat,
                    limit: Limit::parse(50).unwrap(),
                    ..NearbyQuery::new(
                        Coordinates::parse(48.02, 1.98).unwrap(),
                        RadiusM::parse(5_000.0).unwrap(),
                    )
                };
                let got = index.search(&q).unwrap();
                assert_eq!(got, index.brute_force_search(&q).unwrap());
                assert!(got.total > 100, "{}", got.total);
            }
        }
    }

    #[test]
    fn ids_map_dense_and_sparse() {
        let dense = IdMap::build(vec![(5, 0), (6, 1), (8, 2)]);
        assert!(matches!(dense, IdMap::Dense { .. }));
        assert_eq!(dense.get(8), Some(2));
        assert_eq!(dense.get(7), None);
        assert_eq!(dense.get(4), None);
        assert_eq!(dense.get(i64::MIN), None);
        let sparse = IdMap::build(vec![(1, 0), (1_000_000_000, 1)]);
        assert!(matches!(sparse, IdMap::Sorted { .. }));
        assert_eq!(sparse.get(1_000_000_000), Some(1));
        assert_eq!(sparse.get(2), None);
    }

    #[test]
    fn duplicate_ids_in_a_bulk_build_keep_the_last() {
        let index = PlaceIndex::from_places([place(1, 1.0, 1.0), place(1, 2.0, 2.0)]);
        assert_eq!(index.len(), 1);
        let p = index.get(BusinessId::parse(1).unwrap()).unwrap();
        assert_eq!(p.coordinates.lat_deg(), 2.0);
    }
}
