//! proximity-service: nearby search over HTTP.

pub mod cache;
pub mod cli;
pub mod configuration;
pub mod consistency;
pub mod domain;
pub mod error;
pub mod extract;
pub mod geo;
pub mod import;
pub mod metrics;
pub mod middleware;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
pub mod store;
pub mod sync;
pub mod synth;
