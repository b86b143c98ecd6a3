//! Domain types: one validated newtype per concept (parse, don't validate).
//!
//! Every constructor is a `parse`/`TryFrom` that returns a [`DomainError`] naming the rejected
//! field, so invalid latitudes, radii or cursors never reach the index or the store. This module
//! knows nothing of HTTP or SQL; the routes and storage layers convert to and from these types.

mod address;
mod business;
mod business_id;
mod business_name;
mod category;
mod coordinates;
mod cursor;
mod degrees;
mod error;
mod hours;
mod index_kind;
mod latitude;
mod limit;
mod longitude;
mod phone;
mod radius;
mod text;

pub use address::Address;
pub use business::{Business, NewBusiness, RawBusiness};
pub use business_id::BusinessId;
pub use business_name::BusinessName;
pub use category::Category;
pub use coordinates::Coordinates;
pub use cursor::{Cursor, CursorScope};
pub use degrees::DEGREE_SCALE;
pub use error::DomainError;
pub use hours::Hours;
pub use index_kind::IndexKind;
pub use latitude::Latitude;
pub use limit::Limit;
pub use longitude::Longitude;
pub use phone::Phone;
pub use radius::RadiusM;

#[cfg(test)]
mod tests;
