//! HTTP handlers, one file per endpoint group.

pub mod businesses;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod schema;
pub mod search;
