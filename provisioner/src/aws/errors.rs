//! The ONE place where AWS error codes become [`ErrorKind`]s.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::engine::{CloudError, ErrorKind};

/// Classify an AWS error code (and HTTP status, when there was a response).
pub fn classify(code: &str, status: Option<u16>) -> ErrorKind {
    // 501: the endpoint does not implement the API (an emulator without the service),
    // whatever code it puts on it (LocalStack says `InternalFailure`).
    if status == Some(501) {
        return ErrorKind::Unsupported;
    }
    let c = code;
    if c.ends_with(".NotFound")
        || c.ends_with("NotFound")
        || c.ends_with("NotFoundException")
        || matches!(
            c,
            "NoSuchEntity"
                | "NoSuchHostedZone"
                | "NoSuchHealthCheck"
                | "ParameterNotFound"
                | "InvalidAllocationID.NotFound"
                | "InvalidAssociationID.NotFound"
                | "InvalidRoute.NotFound"
                | "InvalidPermission.NotFound"
                | "InvalidGroup.NotFound"
        )
    {
        return ErrorKind::NotFound;
    }
    match c {
        "DependencyViolation"
        | "ResourceInUse"
        | "ResourceInUseFault"
        | "DeleteConflict"
        | "HostedZoneNotEmpty"
        | "InvalidIPAddress.InUse"
        | "AuthFailure.InUse"
        | "ScalingActivityInProgress"
        | "ScalingActivityInProgressFault"
        | "InvalidNetworkInterface.InUse"
        | "IncorrectState"
        | "OperationNotPermitted" => return ErrorKind::DependencyViolation,
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "PriorRequestNotComplete"
        | "SlowDown"
        | "Throttled" => return ErrorKind::Throttling,
        "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Unavailable"
        | "InternalServerError"
        | "ServiceUnavailableException" => return ErrorKind::ServerError,
        "InvalidPermission.Duplicate"
        | "EntityAlreadyExists"
        | "AlreadyExists"
        | "DuplicateLoadBalancerName"
        | "DuplicateTargetGroupName"
        | "DuplicateListener"
        | "HostedZoneAlreadyExists"
        | "ParameterAlreadyExists"
        | "RouteAlreadyExists"
        | "InvalidLaunchTemplateName.AlreadyExistsException"
        | "AlreadyExistsFault"
        | "Resource.AlreadyAssociated"
        | "InvalidGroup.Duplicate" => return ErrorKind::AlreadyExists,
        c if auth_problem_of_code(c).is_some() => return ErrorKind::AccessDenied,
        "InvalidAction"
        | "UnknownOperationException"
        | "NotImplemented"
        | "InvalidSubscription"
        | "OptInRequired" => return ErrorKind::Unsupported,
        _ => {}
    }
    if c.starts_with("Invalid") || c.starts_with("Validation") || c.starts_with("Missing") {
        return ErrorKind::InvalidRequest;
    }
    match status {
        Some(501) => ErrorKind::Unsupported,
        Some(s) if s >= 500 => ErrorKind::ServerError,
        Some(429) => ErrorKind::Throttling,
        Some(404) if c.is_empty() => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

/// Why a call failed, when the credentials are the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProblem {
    /// None could be had (no provider found any, an SSO token missing or expired, a
    /// `credential_process` failing): the call was never sent.
    NotLoaded,
    /// AWS does not know the key, or the signature does not match it.
    Rejected,
    /// Temporary credentials past their expiry (or a clock far off).
    Expired,
    /// Valid credentials without the permission for this call.
    Denied,
}

/// The credentials problem a code names, per protocol: EC2's query API (`AuthFailure`,
/// `RequestExpired`, `UnauthorizedOperation`), the awsQuery and REST-XML services
/// (`InvalidClientTokenId`, `ExpiredToken`, `SignatureDoesNotMatch`, `AccessDenied`) and the
/// JSON ones (`UnrecognizedClientException`, `ExpiredTokenException`,
/// `InvalidSignatureException`, `AccessDeniedException`).
fn auth_problem_of_code(code: &str) -> Option<AuthProblem> {
    Some(match code {
        "AuthFailure"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException" => AuthProblem::Rejected,
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => AuthProblem::Expired,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => AuthProblem::Denied,
        _ => return None,
    })
}

/// The credentials problem behind `e`, if that is what it is.
pub fn auth_problem(e: &CloudError) -> Option<AuthProblem> {
    match auth_problem_of_code(&e.code) {
        Some(p) => Some(p),
        // No code: the SDK failed to get credentials before sending (see `map_sdk_error`).
        None if e.kind == ErrorKind::AccessDenied && e.code.is_empty() => {
            Some(AuthProblem::NotLoaded)
        }
        None => None,
    }
}

/// Map any SDK error onto our [`CloudError`].
pub fn map_sdk_error<E, R>(op: &str, err: SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status_code();
            let e = se.err();
            let code = e.code().unwrap_or_default().to_string();
            let message = e.message().unwrap_or_default().to_string();
            CloudError::new(classify(&code, Some(status)), op, code, message)
        }
        // No credentials (none in the chain, a bad profile): not a network problem, so
        // retrying cannot help, and would keep such a user waiting through every backoff
        // before saying so. Anything else that failed to dispatch (a connection closed
        // mid-response is "other" with a transient kind) stays a transport error: retried,
        // and a create is then re-found rather than trusted to have failed.
        SdkError::DispatchFailure(df)
            if !df.is_io()
                && !df.is_timeout()
                && df.as_other().is_none()
                && dispatch_text(&err)
                    .to_ascii_lowercase()
                    .contains("credential") =>
        {
            CloudError::new(ErrorKind::AccessDenied, op, "", dispatch_text(&err))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => CloudError::new(
            ErrorKind::Transport,
            op,
            "",
            format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ),
        ),
        SdkError::ResponseError(re) => {
            let status = re.raw().status_code();
            let kind = if status == 501 {
                ErrorKind::Unsupported
            } else if status >= 500 {
                ErrorKind::ServerError
            } else if status == 429 {
                ErrorKind::Throttling
            } else {
                ErrorKind::Other
            };
            CloudError::new(
                kind,
                op,
                format!("HTTP {status}"),
                format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(&err)
                ),
            )
        }
        _ => CloudError::new(
            ErrorKind::Other,
            op,
            err.code().unwrap_or_default(),
            format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&err)
            ),
        ),
    }
}

fn dispatch_text<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    format!(
        "{}",
        aws_smithy_types::error::display::DisplayErrorContext(err)
    )
}

/// The HTTP status of a raw response (implemented for the SDK's response type).
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(
            classify("InvalidVpcID.NotFound", Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify("InvalidSubnetID.NotFound", Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify("LoadBalancerNotFound", Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(classify("NoSuchEntity", Some(404)), ErrorKind::NotFound);
        assert_eq!(classify("NoSuchHostedZone", Some(404)), ErrorKind::NotFound);
        assert_eq!(
            classify("DependencyViolation", Some(400)),
            ErrorKind::DependencyViolation
        );
        assert_eq!(
            classify("ResourceInUse", Some(400)),
            ErrorKind::DependencyViolation
        );
        assert_eq!(classify("Throttling", Some(400)), ErrorKind::Throttling);
        assert_eq!(
            classify("RequestLimitExceeded", Some(503)),
            ErrorKind::Throttling
        );
        assert_eq!(
            classify("ThrottlingException", Some(400)),
            ErrorKind::Throttling
        );
        assert_eq!(classify("InternalError", Some(500)), ErrorKind::ServerError);
        assert_eq!(classify("", Some(503)), ErrorKind::ServerError);
        assert_eq!(classify("", Some(501)), ErrorKind::Unsupported);
        assert_eq!(
            classify("InternalFailure", Some(501)),
            ErrorKind::Unsupported
        );
        assert_eq!(
            classify("InvalidParameterValue", Some(400)),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            classify("InvalidPermission.Duplicate", Some(400)),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            classify("UnauthorizedOperation", Some(403)),
            ErrorKind::AccessDenied
        );
        assert_eq!(classify("SomethingOdd", Some(400)), ErrorKind::Other);
    }

    #[test]
    fn credentials_codes_of_every_protocol_are_access_problems() {
        for (code, problem) in [
            ("AuthFailure", AuthProblem::Rejected),
            ("InvalidClientTokenId", AuthProblem::Rejected),
            ("UnrecognizedClientException", AuthProblem::Rejected),
            ("SignatureDoesNotMatch", AuthProblem::Rejected),
            ("InvalidSignatureException", AuthProblem::Rejected),
            ("MissingAuthenticationToken", AuthProblem::Rejected),
            ("InvalidAccessKeyId", AuthProblem::Rejected),
            ("ExpiredToken", AuthProblem::Expired),
            ("ExpiredTokenException", AuthProblem::Expired),
            ("RequestExpired", AuthProblem::Expired),
            ("AccessDenied", AuthProblem::Denied),
            ("AccessDeniedException", AuthProblem::Denied),
            ("UnauthorizedOperation", AuthProblem::Denied),
        ] {
            // Never InvalidRequest (`Invalid…`, `Missing…`) nor anything retried.
            assert_eq!(classify(code, Some(400)), ErrorKind::AccessDenied, "{code}");
            let e = CloudError::new(ErrorKind::AccessDenied, "ec2:X", code, "m");
            assert_eq!(auth_problem(&e), Some(problem), "{code}");
        }
        let unsupported = CloudError::new(ErrorKind::Unsupported, "elbv2:X", "", "m");
        assert_eq!(auth_problem(&unsupported), None);
        let no_credentials = CloudError::new(ErrorKind::AccessDenied, "ec2:X", "", "m");
        assert_eq!(auth_problem(&no_credentials), Some(AuthProblem::NotLoaded));
    }

    fn dispatch(connector: aws_smithy_runtime_api::client::result::ConnectorError) -> CloudError {
        type E = aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsError;
        let err: SdkError<E, aws_smithy_runtime_api::http::Response> =
            SdkError::dispatch_failure(connector);
        map_sdk_error("ec2:DescribeVpcs", err)
    }

    #[test]
    fn missing_credentials_are_not_retried_but_a_dropped_connection_is() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_types::retry::ErrorKind as RetryKind;
        let no_credentials = dispatch(ConnectorError::other(
            "an error occurred while loading credentials: no providers in chain provided credentials"
                .into(),
            None,
        ));
        assert_eq!(no_credentials.kind, ErrorKind::AccessDenied);
        assert!(no_credentials.message.contains("credentials"));
        // hyper's "connection closed before message completed": the call may have been done.
        let closed = dispatch(ConnectorError::other(
            "connection closed before message completed".into(),
            Some(RetryKind::TransientError),
        ));
        assert_eq!(closed.kind, ErrorKind::Transport);
        let refused = dispatch(ConnectorError::io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        ));
        assert_eq!(refused.kind, ErrorKind::Transport);
    }
}
