//! What latitudes and longitudes share: parsing an angle in degrees within
//! `±max`, and the 1e-7 degree grid both are kept on.

use super::DomainError;

/// Coordinates are kept at a resolution of 1e-7 degree (≈ 1.1 cm), like OpenStreetMap.
///
/// Quantising at the edge means every layer (index, database, brute-force reference) sees the
/// very same `f64`, and lets the in-memory index store a coordinate losslessly in an `i32`.
pub const DEGREE_SCALE: f64 = 1e7;

/// Rounds `deg` to the 1e-7 degree grid.
fn quantise(deg: f64) -> f64 {
    (deg * DEGREE_SCALE).round() / DEGREE_SCALE
}

/// Validates `deg` (finite, within `-max..=max`) and quantises it; errors name `field`.
pub(super) fn parse(field: &'static str, deg: f64, max: f64) -> Result<f64, DomainError> {
    if !deg.is_finite() {
        return Err(DomainError::new(field, "must be a finite number"));
    }
    if !(-max..=max).contains(&deg) {
        return Err(DomainError::new(
            field,
            format!("must be between -{max} and {max} degrees, got {deg}"),
        ));
    }
    Ok(quantise(deg))
}

/// Parses a decimal string such as `"52.52"`, then as [`parse`].
pub(super) fn parse_str(field: &'static str, s: &str, max: f64) -> Result<f64, DomainError> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| DomainError::new(field, format!("not a number: {s:?}")))?;
    parse(field, v, max)
}

/// `deg` as an integer number of 1e-7 degrees (lossless for quantised values).
pub(super) fn to_e7(deg: f64) -> i32 {
    (deg * DEGREE_SCALE).round() as i32
}

/// Inverse of [`to_e7`]; `None` outside `-max..=max`.
pub(super) fn from_e7(e7: i32, max: f64) -> Option<f64> {
    let deg = f64::from(e7) / DEGREE_SCALE;
    (-max..=max).contains(&deg).then_some(deg)
}
