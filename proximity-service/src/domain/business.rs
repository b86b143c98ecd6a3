//! A business (a place users search for) and the validated input that creates one.

use super::{Address, BusinessId, BusinessName, Category, Coordinates, DomainError, Hours, Phone};
use serde::{Deserialize, Serialize};

/// Validated input for creating or replacing a business. Every field is already a domain type,
/// so a `NewBusiness` is valid by construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewBusiness {
    /// Display name.
    pub name: BusinessName,
    /// Normalised category.
    pub category: Category,
    /// Location.
    pub coordinates: Coordinates,
    /// Optional postal address.
    pub address: Option<Address>,
    /// Optional phone number.
    pub phone: Option<Phone>,
    /// Optional opening hours.
    pub hours: Option<Hours>,
}

/// Unvalidated business fields as they arrive from outside (a JSON body, a CSV row).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawBusiness {
    /// Name (required).
    pub name: String,
    /// Category (required).
    pub category: String,
    /// Latitude in degrees (required).
    pub lat: f64,
    /// Longitude in degrees (required).
    pub lng: f64,
    /// Optional address.
    pub address: Option<String>,
    /// Optional phone.
    pub phone: Option<String>,
    /// Optional opening hours.
    pub hours: Option<String>,
}

impl NewBusiness {
    /// Validates every field; the first invalid one is reported (by its field name).
    pub fn parse(raw: &RawBusiness) -> Result<Self, DomainError> {
        Ok(Self {
            name: BusinessName::parse(&raw.name)?,
            category: Category::parse(&raw.category)?,
            coordinates: Coordinates::parse(raw.lat, raw.lng)?,
            address: raw.address.as_deref().map(Address::parse).transpose()?,
            phone: raw.phone.as_deref().map(Phone::parse).transpose()?,
            hours: raw.hours.as_deref().map(Hours::parse).transpose()?,
        })
    }

    /// The stored business once the store has assigned `id`.
    pub fn with_id(self, id: BusinessId) -> Business {
        Business {
            id,
            name: self.name,
            category: self.category,
            coordinates: self.coordinates,
            address: self.address,
            phone: self.phone,
            hours: self.hours,
        }
    }
}

impl TryFrom<RawBusiness> for NewBusiness {
    type Error = DomainError;
    fn try_from(raw: RawBusiness) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

/// A stored business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Business {
    /// Primary key.
    pub id: BusinessId,
    /// Display name.
    pub name: BusinessName,
    /// Normalised category.
    pub category: Category,
    /// Location.
    pub coordinates: Coordinates,
    /// Optional postal address.
    pub address: Option<Address>,
    /// Optional phone number.
    pub phone: Option<Phone>,
    /// Optional opening hours.
    pub hours: Option<Hours>,
}
