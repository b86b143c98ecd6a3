//! Unit tests: every parse error of every domain type, and the happy paths.

use super::*;

fn field_of<T: std::fmt::Debug>(r: Result<T, DomainError>) -> &'static str {
    r.expect_err("should be rejected").field
}

#[test]
fn latitude_bounds_and_non_finite() {
    assert_eq!(Latitude::parse(90.0).unwrap().degrees(), 90.0);
    assert_eq!(Latitude::parse(-90.0).unwrap().degrees(), -90.0);
    for bad in [
        90.000_001,
        -90.5,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        assert_eq!(field_of(Latitude::parse(bad)), "lat", "{bad}");
    }
    assert_eq!(field_of(Latitude::parse_str("north")), "lat");
    assert_eq!(Latitude::parse_str(" 52.5 ").unwrap().degrees(), 52.5);
}

#[test]
fn longitude_bounds_and_non_finite() {
    assert_eq!(Longitude::parse(180.0).unwrap().degrees(), 180.0);
    assert_eq!(Longitude::parse(-180.0).unwrap().degrees(), -180.0);
    for bad in [180.1, -181.0, f64::NAN, f64::INFINITY] {
        assert_eq!(field_of(Longitude::parse(bad)), "lng", "{bad}");
    }
    assert_eq!(field_of(Longitude::parse_str("")), "lng");
}

#[test]
fn coordinates_are_quantised_losslessly_to_e7() {
    let c = Coordinates::parse(57.649_111_119, 10.407_440_49).unwrap();
    assert_eq!(c.lat_deg(), 57.649_111_1);
    assert_eq!(c.lng_deg(), 10.407_440_5);
    assert_eq!(Latitude::from_e7(c.lat().e7()).unwrap(), c.lat());
    assert_eq!(Longitude::from_e7(c.lng().e7()).unwrap(), c.lng());
    assert_eq!(field_of(Coordinates::parse(0.0, 200.0)), "lng");
    assert_eq!(field_of(Coordinates::parse(-100.0, 0.0)), "lat");
}

#[test]
fn radius_bounds() {
    assert_eq!(RadiusM::default().metres(), 5000.0);
    assert_eq!(RadiusM::parse(50_000.0).unwrap().metres(), 50_000.0);
    assert_eq!(RadiusM::parse(0.5).unwrap().metres(), 0.5);
    for bad in [0.0, -1.0, 50_000.1, f64::NAN, f64::INFINITY] {
        assert_eq!(field_of(RadiusM::parse(bad)), "radius", "{bad}");
    }
    assert_eq!(field_of(RadiusM::parse_str("far")), "radius");
}

#[test]
fn limit_bounds() {
    assert_eq!(Limit::default().get(), 20);
    assert_eq!(Limit::parse(1).unwrap().get(), 1);
    assert_eq!(Limit::parse(200).unwrap().get(), 200);
    for bad in [0, -1, 201, i64::MAX] {
        assert_eq!(field_of(Limit::parse(bad)), "limit", "{bad}");
    }
    assert_eq!(field_of(Limit::parse_str("1.5")), "limit");
}

#[test]
fn category_is_normalised_and_bounded() {
    assert_eq!(Category::parse("  Café ").unwrap().as_str(), "café");
    assert_eq!(field_of(Category::parse("   ")), "category");
    assert_eq!(field_of(Category::parse(&"x".repeat(65))), "category");
    assert!(Category::parse(&"é".repeat(64)).is_ok());
    assert_eq!(field_of(Category::parse("a\u{7}b")), "category");
    // `İ` lower-cases to two characters: 40 of them are 80 once stored.
    assert_eq!(field_of(Category::parse(&"İ".repeat(40))), "category");
    // Whatever is accepted parses again to itself (it is read back from the database).
    for ok in ["Café", &"İ".repeat(32), "ΣΑΣ", "ǅ"] {
        let c = Category::parse(ok).unwrap();
        assert_eq!(Category::parse(c.as_str()).unwrap(), c, "{ok}");
    }
}

#[test]
fn business_id_positive() {
    assert_eq!(BusinessId::parse(1).unwrap().get(), 1);
    for bad in [0, -5, i64::MIN] {
        assert_eq!(field_of(BusinessId::parse(bad)), "id");
    }
    assert_eq!(field_of("abc".parse::<BusinessId>()), "id");
    assert_eq!(field_of("0".parse::<BusinessId>()), "id");
    assert_eq!("42".parse::<BusinessId>().unwrap().get(), 42);
}

#[test]
fn names_and_optional_texts() {
    assert_eq!(BusinessName::parse("  Joe's  ").unwrap().as_str(), "Joe's");
    assert_eq!(field_of(BusinessName::parse("")), "name");
    assert_eq!(field_of(BusinessName::parse(&"n".repeat(201))), "name");
    assert!(BusinessName::parse(&"n".repeat(200)).is_ok());
    assert_eq!(field_of(BusinessName::parse("a\nb")), "name");
    assert_eq!(field_of(Address::parse(" ")), "address");
    assert_eq!(field_of(Address::parse(&"a".repeat(301))), "address");
    assert_eq!(field_of(Hours::parse(&"h".repeat(201))), "hours");
    assert!(Hours::parse("Mo-Fr 08:00-18:00").is_ok());
    assert_eq!(
        Phone::parse(" +49 (30) 1234-567 ").unwrap().as_str(),
        "+49 (30) 1234-567"
    );
    assert_eq!(field_of(Phone::parse("call me")), "phone");
    assert_eq!(field_of(Phone::parse("+-12")), "phone");
    assert_eq!(field_of(Phone::parse(&"1".repeat(33))), "phone");
}

#[test]
fn index_kind_from_str() {
    assert_eq!("geohash".parse::<IndexKind>().unwrap(), IndexKind::Geohash);
    assert_eq!("h3".parse::<IndexKind>().unwrap(), IndexKind::H3);
    for bad in ["H3", "s2", "", "geohash "] {
        assert_eq!(field_of(bad.parse::<IndexKind>()), "index", "{bad}");
    }
    assert_eq!(IndexKind::default().to_string(), "geohash");
}

#[test]
fn new_business_reports_the_first_bad_field() {
    let ok = RawBusiness {
        name: "Cafe".into(),
        category: "Cafe".into(),
        lat: 1.0,
        lng: 2.0,
        address: None,
        phone: Some("+1 555 0100".into()),
        hours: None,
    };
    let nb = NewBusiness::parse(&ok).unwrap();
    assert_eq!(nb.category.as_str(), "cafe");
    let id = BusinessId::parse(7).unwrap();
    assert_eq!(nb.clone().with_id(id).id, id);
    for (raw, field) in [
        (
            RawBusiness {
                name: " ".into(),
                ..ok.clone()
            },
            "name",
        ),
        (
            RawBusiness {
                category: "".into(),
                ..ok.clone()
            },
            "category",
        ),
        (
            RawBusiness {
                lat: 91.0,
                ..ok.clone()
            },
            "lat",
        ),
        (
            RawBusiness {
                lng: f64::NAN,
                ..ok.clone()
            },
            "lng",
        ),
        (
            RawBusiness {
                address: Some("".into()),
                ..ok.clone()
            },
            "address",
        ),
        (
            RawBusiness {
                phone: Some("x".into()),
                ..ok.clone()
            },
            "phone",
        ),
        (
            RawBusiness {
                hours: Some("\u{0}".into()),
                ..ok.clone()
            },
            "hours",
        ),
    ] {
        assert_eq!(field_of(NewBusiness::parse(&raw)), field);
    }
}

fn scope(lat: f64, radius: f64, cat: Option<&str>) -> CursorScope {
    let cat = cat.map(|c| Category::parse(c).unwrap());
    CursorScope::new(
        Coordinates::parse(lat, 13.4).unwrap(),
        RadiusM::parse(radius).unwrap(),
        cat.as_ref(),
    )
}

#[test]
fn cursor_round_trips_and_is_url_safe() {
    let s = scope(52.5, 1000.0, Some("cafe"));
    let id = BusinessId::parse(123_456).unwrap();
    let c = Cursor::new(s, 812.25, id);
    let text = c.encode();
    assert_eq!(text.len(), 34);
    assert!(text
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
    let back = Cursor::parse(&text).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.position(s).unwrap(), (812.25, id));
}

#[test]
fn cursor_rejects_foreign_and_tampered() {
    let s = scope(52.5, 1000.0, None);
    let c = Cursor::new(s, 10.0, BusinessId::parse(9).unwrap());
    for other in [
        scope(52.6, 1000.0, None),
        scope(52.5, 1001.0, None),
        scope(52.5, 1000.0, Some("cafe")),
    ] {
        assert_eq!(c.position(other).unwrap_err().field, "cursor");
    }
    // Flip each character in turn: either the format or the check value must reject it.
    let text = c.encode();
    for i in 0..text.len() {
        let mut bytes = text.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(bytes).unwrap();
        let rejected = match Cursor::parse(&t) {
            Err(e) => e.field == "cursor",
            Ok(c2) => c2.position(s).is_err(),
        };
        assert!(rejected, "tampered cursor {t} accepted");
    }
    for bad in ["", "!!!!", "AAAA", &"A".repeat(65), &"A".repeat(34)] {
        assert_eq!(field_of(Cursor::parse(bad)), "cursor", "{bad}");
    }
}
