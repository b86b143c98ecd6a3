//! Container image references (`[registry[:port]/]path[:tag][@digest]`), checked the way
//! the container runtime parses them, so a bad `cluster.service_image` or `--image` is
//! refused before anything is created rather than when the Deployment is applied.

/// `Err` says what is wrong with `image`.
pub fn check_image_reference(image: &str) -> Result<(), String> {
    if image.is_empty() || image.len() > 255 {
        return Err("must be 1..=255 characters".into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && alg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && hex.len() >= 32
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
        if !ok {
            return Err(format!(
                "`@{d}` is not a digest like `@sha256:<64 hex digits>`"
            ));
        }
    }
    // A tag is after the last `:` that follows the last `/` (a `:` before it is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(format!(
                "tag `{t}` must be 1..=128 of letters, digits, `_`, `.`, `-`, not starting with `.` or `-`"
            ));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // The first part is a registry if it looks like a host: has a `.` or a port, or is localhost.
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        let registry = parts.remove(0);
        let (host, port) = match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
        if !host_ok || !port_ok {
            return Err(format!("registry `{registry}` is not a host[:port]"));
        }
    }
    for p in &parts {
        let ok = !p.is_empty()
            && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && p.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !ok {
            return Err(format!(
                "repository part `{p}` must be lowercase letters and digits, separated by `.`, `_` or `-`"
            ));
        }
    }
    Ok(())
}

/// `cluster.k3s_mirror`: an `https://host[:port]/path` URL made of the characters a URL needs
/// and none a shell would read (it is substituted into the node user-data): no quote, `$`,
/// backtick, space, `;` or `&`.
pub fn check_mirror_url(v: &str) -> Result<(), String> {
    let Some(rest) = v.strip_prefix("https://") else {
        return Err(
            "expected an https:// URL (the checksum file comes from the same place)".into(),
        );
    };
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if v.len() > 512 {
        return Err("longer than 512 characters".into());
    }
    match rest
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~/:%@+=,".contains(*c)))
    {
        Some(c) => Err(format!(
            "`{c}` is not allowed (letters, digits and -._~/:%@+=, only)"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_image_reference as check;

    #[test]
    fn accepts_what_the_runtime_accepts() {
        for ok in [
            "proximity-service",
            "proximity-service:0.1.0",
            "ghcr.io/acme/proximity-service:1.0-RC1",
            "localhost:5000/proximity:dev",
            "registry.example.com:5000/team/app_name:v2",
            "docker.io/library/postgres@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "app:1.2@sha256:0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_with_the_reason() {
        for (bad, why) in [
            ("", "1..=255"),
            ("Proximity:1", "lowercase"),
            ("acme//app", "repository part ``"),
            ("app:", "tag ``"),
            ("app:-x", "tag `-x`"),
            ("app name", "repository part"),
            ("app@sha256:xyz", "digest"),
            ("reg.example.com:port/app", "registry"),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
