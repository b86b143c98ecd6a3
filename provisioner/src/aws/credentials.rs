//! Where a run's credentials come from, getting them once before the first call, and saying
//! what failed and what to do when they do not work.
//!
//! - `--profile NAME` uses that profile's credentials even when `AWS_ACCESS_KEY_ID` is set (as
//!   the AWS CLI does: a flag beats the environment);
//! - otherwise `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (`AWS_SESSION_TOKEN`) win;
//! - otherwise `AWS_PROFILE`'s profile;
//! - otherwise the SDK's default chain: the `default` profile, web identity, the container and
//!   the instance role.
//!
//! A profile gets its credentials from an SSO session (`sso_session`, or the legacy
//! `sso_start_url`), a `credential_process`, a role to assume (`role_arn` with a
//! `source_profile` or `credential_source`), a web identity token file, or static keys.
//! [`CredentialSource`] reads which from `~/.aws/config` and `~/.aws/credentials` (or
//! `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`), so that an error can name it and say
//! what to do (`aws sso login --profile X`, run the process yourself, check the keys …).

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_config::profile::{Profile, ProfileFileCredentialsProvider, ProfileSet};
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_types::os_shim_internal::{Env, Fs};

use super::errors::AuthProblem;
use crate::engine::CloudError;

/// How the profile (if any) was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--profile NAME`.
    Flag(String),
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` in the environment.
    Environment,
    /// `AWS_PROFILE=NAME`.
    EnvProfile(String),
    /// Nothing chosen: the SDK's default chain.
    DefaultChain,
}

/// What a profile gets its credentials from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    /// `sso_session` (or the legacy `sso_start_url`). `login` is the profile to pass to
    /// `aws sso login`.
    Sso {
        session: Option<String>,
        login: String,
    },
    /// `credential_process`.
    Process { command: String },
    /// `role_arn`, from `source_profile` (whose own kind is `source`) or `credential_source`.
    AssumeRole {
        role_arn: String,
        source_profile: Option<String>,
        source: Option<Box<ProfileKind>>,
    },
    /// `web_identity_token_file`.
    WebIdentity,
    /// `aws_access_key_id` / `aws_secret_access_key`.
    StaticKeys,
    /// A profile with none of those keys.
    NoCredentials,
    /// No such profile in either file.
    Undefined,
}

/// Where this run's credentials come from, as far as the configuration says.
#[derive(Debug, Clone)]
pub struct CredentialSource {
    pub origin: Origin,
    /// The profile in use and what it holds (`None` for the environment's keys).
    pub profile: Option<(String, ProfileKind)>,
}

impl CredentialSource {
    /// Reads the choice from `--profile`, the environment and the profile files.
    pub async fn detect(flag: Option<&str>) -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let origin = match (flag, env("AWS_ACCESS_KEY_ID"), env("AWS_PROFILE")) {
            (Some(p), _, _) => Origin::Flag(p.to_owned()),
            (None, Some(_), _) => Origin::Environment,
            (None, None, Some(p)) => Origin::EnvProfile(p),
            (None, None, None) => Origin::DefaultChain,
        };
        let name = match &origin {
            Origin::Flag(p) | Origin::EnvProfile(p) => Some(p.clone()),
            Origin::DefaultChain => Some("default".to_owned()),
            Origin::Environment => None,
        };
        let profile = match name {
            Some(name) => {
                let set = aws_config::profile::load(
                    &Fs::real(),
                    &Env::real(),
                    // ~/.aws/config and ~/.aws/credentials, or AWS_CONFIG_FILE and
                    // AWS_SHARED_CREDENTIALS_FILE.
                    &Default::default(),
                    None,
                )
                .await
                .ok();
                let kind = set
                    .as_ref()
                    .map_or(ProfileKind::Undefined, |s| profile_kind(s, &name, 0));
                // The default chain without a `default` profile is not about a profile.
                if origin == Origin::DefaultChain && kind == ProfileKind::Undefined {
                    None
                } else {
                    Some((name, kind))
                }
            }
            None => None,
        };
        Self { origin, profile }
    }

    /// The profile name when a named profile supplies the credentials.
    fn named_profile(&self) -> Option<&str> {
        match &self.origin {
            Origin::Flag(p) | Origin::EnvProfile(p) => Some(p),
            _ => None,
        }
    }

    /// What a failure is about and what to do, in one line: `problem` is what went wrong
    /// (`could not get credentials: …`, `AWS rejected them: …`).
    pub fn explain(&self, what: AuthProblem, problem: &str) -> String {
        format!("credentials from {self}: {problem}; {}", self.advice(what))
    }

    /// The error for credentials that could not be had at all (before any call).
    pub fn not_loaded(&self, err: &dyn std::error::Error) -> String {
        self.explain(
            AuthProblem::NotLoaded,
            &format!("could not get them: {}", error_chain(err)),
        )
    }

    /// The error for calls that AWS refused because of the credentials (`failures` are the
    /// refused calls, each with its problem; `endpoint` where they went).
    pub fn refused(&self, failures: &[(AuthProblem, &CloudError)], endpoint: &str) -> String {
        // The most telling problem decides the advice: expired over rejected over denied.
        let worst = [
            AuthProblem::NotLoaded,
            AuthProblem::Expired,
            AuthProblem::Rejected,
            AuthProblem::Denied,
        ]
        .into_iter()
        .find(|p| failures.iter().any(|(f, _)| f == p))
        .unwrap_or(AuthProblem::Rejected);
        // Each answer once, with the calls that got it: `CODE from op, op ("message")`.
        let mut answers: Vec<(&str, &str, Vec<&str>)> = Vec::new();
        for (_, e) in failures {
            match answers
                .iter_mut()
                .find(|(c, m, _)| *c == e.code && *m == e.message)
            {
                Some((_, _, ops)) => ops.push(&e.op),
                None => answers.push((&e.code, &e.message, vec![&e.op])),
            }
        }
        let calls: Vec<String> = answers
            .iter()
            .map(|(code, message, ops)| {
                let mut s = format!("{} from {}", or_none(code), ops.join(", "));
                if !message.is_empty() {
                    s.push_str(&format!(" ({message:?})"));
                }
                s
            })
            .collect();
        let verb = match worst {
            AuthProblem::NotLoaded => "could not get them",
            AuthProblem::Expired => "they have expired",
            AuthProblem::Rejected => "AWS does not accept them",
            AuthProblem::Denied => "they are not allowed to make these calls",
        };
        self.explain(
            worst,
            &format!("{verb} at {endpoint}: {}", calls.join("; ")),
        )
    }

    /// What to do about `what`, for this source.
    fn advice(&self, what: AuthProblem) -> String {
        if what == AuthProblem::Denied {
            return "the identity behind them needs those permissions (an IAM policy \
                    allowing the calls named), or use a profile that has them (--profile)"
                .to_owned();
        }
        let kind = self.profile.as_ref().map(|(_, k)| k);
        if let Some(login) = kind.and_then(ProfileKind::sso_login) {
            return sso_login_advice(login);
        }
        let name = self
            .named_profile()
            .or(self.profile.as_ref().map(|(n, _)| n.as_str()))
            .unwrap_or("default");
        match (kind, &self.origin) {
            (None, Origin::Environment) => match what {
                AuthProblem::Expired => "AWS_SESSION_TOKEN and its keys have expired: get new \
                                         ones, or unset AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY \
                                         and AWS_SESSION_TOKEN to use a profile (--profile)"
                    .to_owned(),
                _ => "check that AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
                      AWS_SESSION_TOKEN, set only with temporary keys) are one current set, or \
                      unset them to use a profile (--profile)"
                    .to_owned(),
            },
            (None, _) => "no credentials were found: set AWS_ACCESS_KEY_ID and \
                          AWS_SECRET_ACCESS_KEY, pass --profile NAME (or set AWS_PROFILE), or \
                          run where an instance or container role is available"
                .to_owned(),
            (Some(ProfileKind::Undefined), _) => format!(
                "profile `{name}` is in neither ~/.aws/config nor ~/.aws/credentials \
                 (AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE): `aws configure sso --profile \
                 {name}` or `aws configure --profile {name}` makes one"
            ),
            (Some(ProfileKind::NoCredentials), _) => format!(
                "profile `{name}` names no credentials (no sso_session, credential_process, \
                 role_arn or aws_access_key_id): `aws configure sso --profile {name}` or `aws \
                 configure --profile {name}` adds them"
            ),
            (Some(ProfileKind::Process { command }), _) => match what {
                AuthProblem::NotLoaded => format!(
                    "run `{command}` yourself to see why it fails; it must print the \
                     credential_process JSON (Version 1) on stdout and exit 0"
                ),
                _ => format!(
                    "the keys `{command}` printed are not (or no longer) valid: check what it \
                     prints"
                ),
            },
            (Some(ProfileKind::StaticKeys), _) => format!(
                "check aws_access_key_id and aws_secret_access_key of profile `{name}` \
                 (`aws configure --profile {name}`)"
            ),
            (Some(ProfileKind::WebIdentity), _) => format!(
                "check web_identity_token_file and role_arn of profile `{name}`: the token \
                 file must hold a current token"
            ),
            (
                Some(ProfileKind::AssumeRole {
                    role_arn,
                    source_profile,
                    ..
                }),
                _,
            ) => match source_profile {
                Some(src) => format!(
                    "check that profile `{src}` has working credentials and may assume \
                     {role_arn} (`aws sts get-caller-identity --profile {name}` shows it)"
                ),
                None => format!(
                    "check the credential_source of profile `{name}` and that it may assume \
                     {role_arn}"
                ),
            },
            (Some(ProfileKind::Sso { login, .. }), _) => sso_login_advice(login),
        }
    }
}

fn sso_login_advice(profile: &str) -> String {
    format!("run `aws sso login --profile {profile}`, then try again")
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.origin, &self.profile) {
            (Origin::Environment, _) => f.write_str(
                "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)",
            ),
            (Origin::Flag(p), Some((_, k))) => write!(f, "profile `{p}` (--profile, {k})"),
            (Origin::EnvProfile(p), Some((_, k))) => write!(f, "profile `{p}` (AWS_PROFILE, {k})"),
            (Origin::DefaultChain, Some((p, k))) => {
                write!(f, "the default chain (profile `{p}`, {k})")
            }
            (Origin::Flag(p) | Origin::EnvProfile(p), None) => write!(f, "profile `{p}`"),
            (Origin::DefaultChain, None) => f.write_str(
                "the default chain (no AWS_ACCESS_KEY_ID, AWS_PROFILE or `default` profile; \
                 web identity, container and instance role tried)",
            ),
        }
    }
}

impl ProfileKind {
    /// The profile to give `aws sso login`, when SSO is where the credentials start.
    fn sso_login(&self) -> Option<&str> {
        match self {
            ProfileKind::Sso { login, .. } => Some(login),
            ProfileKind::AssumeRole {
                source: Some(s), ..
            } => s.sso_login(),
            _ => None,
        }
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileKind::Sso {
                session: Some(s), ..
            } => write!(f, "SSO session `{s}`"),
            ProfileKind::Sso { session: None, .. } => f.write_str("legacy SSO (sso_start_url)"),
            ProfileKind::Process { command } => write!(f, "credential_process `{command}`"),
            ProfileKind::AssumeRole {
                role_arn,
                source_profile: Some(src),
                source,
            } => match source {
                Some(k) => write!(f, "role {role_arn} from profile `{src}`, {k}"),
                None => write!(f, "role {role_arn} from profile `{src}`"),
            },
            ProfileKind::AssumeRole { role_arn, .. } => {
                write!(f, "role {role_arn} from its credential_source")
            }
            ProfileKind::WebIdentity => f.write_str("web identity token"),
            ProfileKind::StaticKeys => f.write_str("static keys"),
            ProfileKind::NoCredentials => f.write_str("no credentials configured"),
            ProfileKind::Undefined => f.write_str("not defined"),
        }
    }
}

/// What profile `name` of `set` gets its credentials from (the same precedence as the SDK:
/// a role first, then web identity, SSO, a process, static keys).
fn profile_kind(set: &ProfileSet, name: &str, depth: usize) -> ProfileKind {
    let Some(p) = set.get_profile(name) else {
        return ProfileKind::Undefined;
    };
    let get = |k: &str| p.get(k).map(str::to_owned);
    if let Some(role_arn) = get("role_arn").filter(|_| p.get("web_identity_token_file").is_none()) {
        let source_profile = get("source_profile");
        // `source_profile` may name the profile itself (its static keys) or form a loop.
        let source = source_profile
            .as_deref()
            .filter(|s| *s != name && depth < 8)
            .map(|s| Box::new(profile_kind(set, s, depth + 1)));
        return ProfileKind::AssumeRole {
            role_arn,
            source_profile,
            source,
        };
    }
    if p.get("web_identity_token_file").is_some() {
        return ProfileKind::WebIdentity;
    }
    if is_sso(p) {
        return ProfileKind::Sso {
            session: get("sso_session"),
            login: name.to_owned(),
        };
    }
    if let Some(command) = get("credential_process") {
        return ProfileKind::Process { command };
    }
    if p.get("aws_access_key_id").is_some() {
        return ProfileKind::StaticKeys;
    }
    ProfileKind::NoCredentials
}

fn is_sso(p: &Profile) -> bool {
    p.get("sso_session").is_some() || p.get("sso_start_url").is_some()
}

/// The credentials provider for `source`: a named profile's own provider (so that a failing
/// profile is not passed over for whatever else the chain finds), or `None` for the SDK's
/// default chain. `conf` carries the HTTP client, region and timeouts its SSO, OIDC and STS
/// clients use.
pub fn profile_provider(
    source: &CredentialSource,
    conf: ProviderConfig,
) -> Option<SharedCredentialsProvider> {
    let name = source.named_profile()?;
    Some(SharedCredentialsProvider::new(
        ProfileFileCredentialsProvider::builder()
            .configure(&conf)
            .profile_name(name)
            .build(),
    ))
}

/// Gets credentials once from `provider`, so that a failure is reported before any call (and
/// not as each service failing); returns a provider that hands out these first and asks
/// `provider` again only once they are about to expire (a `credential_process` runs once).
pub async fn prime(
    provider: SharedCredentialsProvider,
) -> Result<SharedCredentialsProvider, aws_credential_types::provider::error::CredentialsError> {
    let first = provider.provide_credentials().await?;
    Ok(SharedCredentialsProvider::new(Primed {
        first: std::sync::Mutex::new(Some(first)),
        inner: provider,
    }))
}

#[derive(Debug)]
struct Primed {
    first: std::sync::Mutex<Option<Credentials>>,
    inner: SharedCredentialsProvider,
}

impl ProvideCredentials for Primed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().ok().and_then(|mut f| f.take());
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|t| t > SystemTime::now() + Duration::from_secs(300))
        };
        match first {
            Some(c) if fresh(&c) => future::ProvideCredentials::ready(Ok(c)),
            _ => self.inner.provide_credentials(),
        }
    }
}

/// An error and its sources, `: `-separated, each said once, without the SDK's wrappers that
/// say only "credentials" again.
fn error_chain(err: &dyn std::error::Error) -> String {
    const WRAPPERS: [&str; 4] = [
        "an error occurred while loading credentials",
        "the credentials provider was not properly configured",
        "unexpected credentials error",
        "an error occurred while loading an access token",
    ];
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        let s = s.trim().trim_end_matches('.').to_owned();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    let telling: Vec<&String> = parts
        .iter()
        .filter(|p| !WRAPPERS.contains(&p.as_str()))
        .collect();
    let parts = if telling.is_empty() {
        parts.iter().collect()
    } else {
        telling
    };
    let text = parts
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(": ");
    // One line: the SDK lists what the chain tried on lines of their own.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn or_none(code: &str) -> &str {
    if code.is_empty() {
        "an error"
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn set(config: &str) -> ProfileSet {
        let fs = Fs::from_slice(&[("/home/u/.aws/config", config)]);
        let env = Env::from_slice(&[("HOME", "/home/u")]);
        aws_config::profile::load(&fs, &env, &Default::default(), None)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn profile_kinds_are_read_from_the_config() {
        let s = set(
            "[profile sso]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = r\n\
                     [sso-session corp]\nsso_start_url = https://x/start\nsso_region = us-east-1\n\
                     [profile proc]\ncredential_process = /bin/creds --x\n\
                     [profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = sso\n\
                     [profile keys]\naws_access_key_id = A\naws_secret_access_key = B\n\
                     [profile empty]\nregion = us-east-1\n",
        )
        .await;
        assert_eq!(
            profile_kind(&s, "sso", 0),
            ProfileKind::Sso {
                session: Some("corp".into()),
                login: "sso".into()
            }
        );
        assert_eq!(
            profile_kind(&s, "proc", 0),
            ProfileKind::Process {
                command: "/bin/creds --x".into()
            }
        );
        let role = profile_kind(&s, "role", 0);
        assert_eq!(
            role.sso_login(),
            Some("sso"),
            "log in to the source profile"
        );
        assert_eq!(profile_kind(&s, "keys", 0), ProfileKind::StaticKeys);
        assert_eq!(profile_kind(&s, "empty", 0), ProfileKind::NoCredentials);
        assert_eq!(profile_kind(&s, "nope", 0), ProfileKind::Undefined);
    }

    fn refused(code: &str, problem: AuthProblem, source: CredentialSource) -> String {
        let e = CloudError::new(
            crate::engine::ErrorKind::AccessDenied,
            "ec2:DescribeAvailabilityZones",
            code,
            "nope",
        );
        source.refused(&[(problem, &e)], "AWS us-east-1")
    }

    #[test]
    fn advice_follows_the_source() {
        let env = CredentialSource {
            origin: Origin::Environment,
            profile: None,
        };
        let s = refused("AuthFailure", AuthProblem::Rejected, env.clone());
        assert!(s.contains("AWS does not accept them"), "{s}");
        assert!(s.contains("AuthFailure"), "{s}");
        assert!(s.contains("check that AWS_ACCESS_KEY_ID"), "{s}");
        let s = refused("ExpiredToken", AuthProblem::Expired, env);
        assert!(s.contains("have expired"), "{s}");

        let sso = CredentialSource {
            origin: Origin::Flag("dev".into()),
            profile: Some((
                "dev".into(),
                ProfileKind::Sso {
                    session: Some("corp".into()),
                    login: "dev".into(),
                },
            )),
        };
        let s = refused("ExpiredToken", AuthProblem::Expired, sso.clone());
        assert!(
            s.starts_with("credentials from profile `dev` (--profile, SSO session `corp`)"),
            "{s}"
        );
        assert!(s.contains("aws sso login --profile dev"), "{s}");
        let s = refused("AccessDenied", AuthProblem::Denied, sso);
        assert!(s.contains("not allowed"), "{s}");
        assert!(!s.contains("sso login"), "{s}");
        assert!(!s.contains('\n'), "one line: {s}");
    }
}
