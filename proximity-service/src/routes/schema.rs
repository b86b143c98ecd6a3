//! OpenAPI schemas the handlers' `#[utoipa::path]` annotations and body types share, built from
//! the domain's own limits (`BusinessName::MAX_CHARS`, `RadiusM::MAX_M` …) so the document
//! states exactly what the extractors enforce. utoipa's attributes take only literals; these
//! functions (`schema_with = …`) are how a constant reaches the document.
//!
//! String fields use a pattern that matches exactly what the domain accepts (at least one
//! non-blank character, no control characters).

use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Object, RefOr, Response, ResponseBuilder};
use utoipa::ToResponse;

use crate::domain::{Address, BusinessName, Category, Hours, IndexKind, Limit, Phone, RadiusM};

/// Text accepted by the domain: no control characters, not blank.
pub const TEXT_PATTERN: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
/// Phone numbers: digits, blanks and `+ - ( ) . /`, at least 3 digits.
pub const PHONE_PATTERN: &str = "^[ +\\-()./]*([0-9][ +\\-()./]*){3,}$";
/// A pagination cursor as `Cursor::parse` accepts it (unpadded URL-safe base64).
pub const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]+$";
/// The longest cursor `Cursor::parse` reads.
pub const CURSOR_MAX_CHARS: usize = 64;
/// A WAL position as `Lsn::from_str` reads it (`X-Consistency-Token`).
pub const LSN_PATTERN: &str = "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$";

fn text_builder(min: usize, max: usize, pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
}

fn text(max: usize) -> Object {
    text_builder(1, max, TEXT_PATTERN).build()
}

fn nullable(builder: ObjectBuilder, ty: Type) -> Object {
    builder
        .schema_type(SchemaType::from_iter([ty, Type::Null]))
        .build()
}

pub fn business_name() -> Object {
    text(BusinessName::MAX_CHARS)
}

pub fn category() -> Object {
    text(Category::MAX_CHARS)
}

pub fn address() -> Object {
    nullable(
        text_builder(1, Address::MAX_CHARS, TEXT_PATTERN),
        Type::String,
    )
}

pub fn phone() -> Object {
    nullable(
        text_builder(3, Phone::MAX_CHARS, PHONE_PATTERN),
        Type::String,
    )
}

pub fn hours() -> Object {
    nullable(
        text_builder(1, Hours::MAX_CHARS, TEXT_PATTERN),
        Type::String,
    )
}

// utoipa drops a parameter's doc comment when its schema comes from `schema_with`, so the
// parameters' descriptions sit on these schemas.

pub fn radius() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .description(Some("Metres."))
        .exclusive_minimum(Some(0))
        .maximum(Some(RadiusM::MAX_M))
        .default(Some(json!(RadiusM::DEFAULT_M)))
        .build()
}

pub fn limit() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(Limit::MAX))
        .default(Some(json!(Limit::DEFAULT)))
        .build()
}

pub fn cursor() -> Object {
    text_builder(1, CURSOR_MAX_CHARS, CURSOR_PATTERN)
        .description(Some(
            "`next_cursor` of the previous page of the same query.",
        ))
        .build()
}

pub fn category_filter() -> Object {
    text_builder(1, Category::MAX_CHARS, TEXT_PATTERN)
        .description(Some("Only places of this category (case-insensitive)."))
        .build()
}

pub fn index_kind() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(IndexKind::ALL.map(IndexKind::as_str)))
        .default(Some(json!(IndexKind::default().as_str())))
        .build()
}

pub fn consistency_token() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(LSN_PATTERN))
        .description(Some("A write's token: read at least that write."))
        .build()
}

/// A 429: the client's token bucket is empty.
pub struct RateLimited;

impl<'r> ToResponse<'r> for RateLimited {
    fn response() -> (&'r str, RefOr<Response>) {
        let retry_after = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .build();
        let response = ResponseBuilder::new()
            .description("Rate limit exceeded; retry after the given number of seconds.")
            .header(
                "Retry-After",
                HeaderBuilder::new().schema(retry_after).build(),
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "Error",
                    ))))
                    .build(),
            )
            .build();
        ("RateLimited", response.into())
    }
}
