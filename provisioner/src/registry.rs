//! Whether the service's container image exists where the nodes will pull it from: one
//! manifest request over the OCI distribution API (`GET /v2/<repository>/manifests/<tag or
//! digest>`), with the registry's anonymous bearer-token flow (`WWW-Authenticate: Bearer
//! realm=…,service=…`) as containerd does it. `up` refuses an image the registry says does not
//! exist or will not give without credentials, before it changes anything; a registry this
//! machine cannot reach is only a warning (the nodes may reach it).

use std::time::Duration;

/// What the registry said of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageCheck {
    /// The manifest exists (with its digest, when the registry sent one).
    Found { digest: Option<String> },
    /// The registry answered that the repository or tag does not exist.
    NotFound(String),
    /// The registry refused to give it without (other) credentials.
    Denied(String),
    /// No answer: DNS, connection, TLS or a timeout.
    Unreachable(String),
}

/// A reference split the way the container runtime does: Docker Hub for names without a
/// registry (`library/` for one-part names), `latest` without a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` as written (Docker Hub: `registry-1.docker.io`).
    pub registry: String,
    pub repository: String,
    /// A tag or a digest.
    pub reference: String,
}

impl ImageRef {
    /// `image` must already have passed [`crate::template::check_image_reference`].
    pub fn parse(image: &str) -> Self {
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (image, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let mut parts: Vec<&str> = name.split('/').collect();
        let registry = if parts.len() > 1
            && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
        {
            parts.remove(0).to_string()
        } else {
            "registry-1.docker.io".to_string()
        };
        if registry == "registry-1.docker.io" && parts.len() == 1 {
            parts.insert(0, "library");
        }
        Self {
            registry: if registry == "docker.io" {
                "registry-1.docker.io".into()
            } else {
                registry
            },
            repository: parts.join("/"),
            reference: digest.unwrap_or_else(|| tag.unwrap_or("latest").to_string()),
        }
    }

    /// `http` only for a registry on this machine (as the runtimes allow), else `https`.
    fn base_url(&self) -> String {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(&*self.registry, |(h, _)| h);
        let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        format!(
            "{}://{}",
            if local { "http" } else { "https" },
            self.registry
        )
    }
}

/// The manifest media types a runtime accepts (index first: multi-architecture images).
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Asks the registry of `image` for its manifest, anonymously or with `basic` (user,
/// password) credentials.
pub async fn check(image: &str, basic: Option<(&str, &str)>, timeout: Duration) -> ImageCheck {
    let r = ImageRef::parse(image);
    let http = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => return ImageCheck::Unreachable(e.to_string()),
    };
    let url = format!(
        "{}/v2/{}/manifests/{}",
        r.base_url(),
        r.repository,
        r.reference
    );
    let get = |auth: Option<String>| {
        let mut req = http.get(&url).header("Accept", ACCEPT);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send()
    };
    let first = match get(basic_header(basic)).await {
        Ok(resp) => resp,
        Err(e) => return ImageCheck::Unreachable(e.to_string()),
    };
    let resp = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
        let challenge = first
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        match bearer_token(&http, &challenge, &r, basic).await {
            Ok(Some(token)) => match get(Some(format!("Bearer {token}"))).await {
                Ok(resp) => resp,
                Err(e) => return ImageCheck::Unreachable(e.to_string()),
            },
            Ok(None) => first,
            Err(e) => return e,
        }
    } else {
        first
    };
    let status = resp.status();
    match status.as_u16() {
        200 => ImageCheck::Found {
            digest: resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
        },
        404 => ImageCheck::NotFound(format!(
            "{} has no {}:{} ({status})",
            r.registry, r.repository, r.reference
        )),
        401 | 403 => ImageCheck::Denied(format!(
            "{} refused {}:{} without credentials it accepts ({status})",
            r.registry, r.repository, r.reference
        )),
        _ => ImageCheck::Unreachable(format!("{} answered {status}", r.registry)),
    }
}

fn basic_header(basic: Option<(&str, &str)>) -> Option<String> {
    use base64::Engine;
    basic.map(|(u, p)| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    })
}

/// The token of a `Bearer realm=…,service=…,scope=…` challenge (pull scope of the
/// repository); `None` for any other challenge.
async fn bearer_token(
    http: &reqwest::Client,
    challenge: &str,
    r: &ImageRef,
    basic: Option<(&str, &str)>,
) -> Result<Option<String>, ImageCheck> {
    let Some(params) = challenge.strip_prefix("Bearer ") else {
        return Ok(None);
    };
    let mut realm = None;
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, v) in challenge_params(params) {
        match k.as_str() {
            "realm" => realm = Some(v),
            "service" | "scope" => query.push((k, v)),
            _ => {}
        }
    }
    if !query.iter().any(|(k, _)| k == "scope") {
        query.push(("scope".into(), format!("repository:{}:pull", r.repository)));
    }
    let Some(realm) = realm else {
        return Ok(None);
    };
    let mut req = http.get(&realm).query(&query);
    if let Some(h) = basic_header(basic) {
        req = req.header("Authorization", h);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ImageCheck::Unreachable(format!("token service {realm}: {e}")))?;
    if !resp.status().is_success() {
        return Err(ImageCheck::Denied(format!(
            "the token service {realm} refused a pull token for {} ({})",
            r.repository,
            resp.status()
        )));
    }
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| ImageCheck::Unreachable(format!("token service {realm}: {e}")))?;
    Ok(body
        .get("token")
        .or_else(|| body.get("access_token"))
        .and_then(|t| t.as_str())
        .map(String::from))
}

/// `realm="https://x",service="y"` → pairs (quoted values may hold commas).
fn challenge_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v.to_string(), n),
                None => (q.to_string(), ""),
            }
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v.trim().to_string(), n),
                None => (after.trim().to_string(), ""),
            }
        };
        out.push((key, value));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_as_the_runtime_does() {
        let r = ImageRef::parse("ghcr.io/proximity/proximity-service:0.1.0");
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.reference.as_str()
            ),
            ("ghcr.io", "proximity/proximity-service", "0.1.0")
        );
        assert_eq!(r.base_url(), "https://ghcr.io");
        let r = ImageRef::parse("postgres");
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.reference.as_str()
            ),
            ("registry-1.docker.io", "library/postgres", "latest")
        );
        let r = ImageRef::parse("localhost:5000/svc@sha256:abcd");
        assert_eq!(r.base_url(), "http://localhost:5000");
        assert_eq!(r.reference, "sha256:abcd");
    }

    #[test]
    fn bearer_challenges_are_read_with_quoted_commas() {
        let p = challenge_params(
            r#"realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            p,
            [
                ("realm".into(), "https://ghcr.io/token".into()),
                ("service".into(), "ghcr.io".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
    }
}
