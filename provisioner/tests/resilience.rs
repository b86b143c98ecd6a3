//! Resilience of `up` / `plan` / `down` on the AWS emulator (one test binary,
//! its own moto server from the harness):
//! - [`faults`]: through the fault-injecting proxy ([`provisioner::faultproxy`]):
//!   throttling, 5xx, NotFound right after a create, pending NAT gateways and
//!   load balancers — `up` and `down` still converge and say what they retried;
//! - [`crash`]: the provisioner killed (SIGKILL) at random points of `up`
//!   (20+ trials, seeded) — the next `up` converges without duplicates, and
//!   `down` leaves nothing;
//! - [`drift`]: a route, a security-group rule and a DNS record deleted behind
//!   the provisioner's back show up in `plan` and are repaired by `up`.
//!
//! - [`credentials`]: credentials that AWS refuses (unknown key, expired token, no
//!   permission, injected by the proxy) are named as such, not taken for a missing service.
//! - [`cli`]: validation output and exit codes, graph formats, and `--local`
//!   (the emulator never outlives the provisioner, even after SIGKILL).
//!
//! What exists is counted through the emulator's own APIs ([`support::Aws`]),
//! not through the provisioner's code.

#[path = "resilience/support.rs"]
mod support;

#[path = "resilience/cli.rs"]
mod cli;
#[path = "resilience/crash.rs"]
mod crash;
#[path = "resilience/credentials.rs"]
mod credentials;
#[path = "resilience/drift.rs"]
mod drift;
#[path = "resilience/faults.rs"]
mod faults;
