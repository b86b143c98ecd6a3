//! proximity-service: nearby search over HTTP.

pub mod domain;
