//! Cloud-agnostic error classification. `crate::aws::errors` is the one place that maps
//! provider error codes onto [`ErrorKind`]; everything else (retry policy, teardown, resources)
//! reasons only in these terms.

use std::fmt;

/// What kind of failure a cloud call had, as far as the engine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The object does not exist (`InvalidVpcID.NotFound`, `LoadBalancerNotFound`, `NoSuchEntity` …).
    NotFound,
    /// Something else still uses it (`DependencyViolation`, `ResourceInUse` …).
    DependencyViolation,
    /// Rate limited (`Throttling`, `RequestLimitExceeded`, `ThrottlingException` …).
    Throttling,
    /// The service failed (HTTP 5xx, `InternalError`, `ServiceUnavailable`).
    ServerError,
    /// No response: connection refused/reset, timeout.
    Transport,
    /// It already exists (`InvalidPermission.Duplicate`, `EntityAlreadyExists` …).
    AlreadyExists,
    /// The request was wrong (`InvalidParameterValue`, `ValidationError` …). Never retried.
    InvalidRequest,
    /// Credentials / permissions problems. Never retried.
    AccessDenied,
    /// The endpoint does not offer this service or action (emulator without ELBv2 …).
    Unsupported,
    /// Anything else. Never retried.
    Other,
}

/// An error from one cloud call, already classified.
#[derive(Debug, Clone, thiserror::Error)]
pub struct CloudError {
    pub kind: ErrorKind,
    /// The operation, e.g. `ec2:CreateVpc`.
    pub op: String,
    /// The provider's error code, e.g. `InvalidVpcID.NotFound` (empty for transport errors).
    pub code: String,
    pub message: String,
}

impl CloudError {
    pub fn new(
        kind: ErrorKind,
        op: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            op: op.into(),
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
    pub fn is_dependency_violation(&self) -> bool {
        self.kind == ErrorKind::DependencyViolation
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code.is_empty() {
            write!(f, "{} failed: {}", self.op, self.message)
        } else {
            write!(f, "{} failed: {}: {}", self.op, self.code, self.message)
        }
    }
}
