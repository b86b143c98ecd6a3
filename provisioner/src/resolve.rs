//! Name overrides for the connections `up` makes to the cluster and the service, in the
//! manner of curl's `--resolve HOST:PORT:ADDR`: a connection to `HOST` on `PORT` goes to
//! `ADDR` instead of what DNS says, while TLS still checks the certificate for `HOST` and HTTP
//! still sends `Host: HOST`. For split-horizon DNS, a tunnel or an SSH port forward
//! (`--resolve api.dev.example.com:6443:127.0.0.1:16443`) — and how the harness's node twin
//! maps the emulator's load balancer names to its own servers.
//!
//! Given with `--resolve` (repeatable) or in `PROVISIONER_RESOLVE` (entries separated by
//! commas or whitespace). `ADDR` is an IP address, optionally with a port of its own
//! (`127.0.0.1:18080`, `[::1]:18080`; curl's `--connect-to` does the same); without one the
//! connection keeps `PORT`. `HOST` may be `*`, any host on that port (as in curl ≥ 7.86); a
//! named host wins over `*`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The environment variable that adds overrides to `--resolve`.
pub const RESOLVE_ENV: &str = "PROVISIONER_RESOLVE";

/// One `HOST:PORT:ADDR` override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// Lower-case host name.
    pub host: String,
    pub port: u16,
    pub addr: SocketAddr,
}

impl Override {
    /// Parses `HOST:PORT:ADDR` or `HOST:PORT:ADDR:PORT2` (`ADDR` an IPv4 address or an IPv6
    /// address in brackets).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("`{s}`: {why} (expected HOST:PORT:ADDR[:PORT])");
        let mut parts = s.splitn(3, ':');
        let (Some(host), Some(port), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("missing parts"));
        };
        if host.is_empty()
            || host.contains(['/', ' ', '[', ']'])
            || host.contains('*') && host != "*"
        {
            return Err(bad("the host is not a name"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port is not 1-65535"))?;
        let addr = if let Ok(ip) = rest.parse::<IpAddr>() {
            SocketAddr::new(ip, port)
        } else if let Ok(ip) = rest.trim_start_matches('[').trim_end_matches(']').parse() {
            SocketAddr::new(ip, port)
        } else {
            rest.parse::<SocketAddr>()
                .map_err(|_| bad("the address is not IP or IP:PORT"))?
        };
        if addr.port() == 0 {
            return Err(bad("the address's port is 0"));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
            addr,
        })
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host, self.port, self.addr)
    }
}

/// Every override in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolver {
    overrides: Vec<Override>,
}

impl Resolver {
    /// From the `--resolve` values and the `PROVISIONER_RESOLVE` value (if any); the flag
    /// wins for a host and port named in both.
    pub fn new(flags: &[String], env: Option<&str>) -> Result<Self, String> {
        let mut overrides = Vec::new();
        for f in flags {
            overrides.push(Override::parse(f).map_err(|e| format!("--resolve {e}"))?);
        }
        for entry in env
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let o = Override::parse(entry).map_err(|e| format!("{RESOLVE_ENV}: {e}"))?;
            if !overrides
                .iter()
                .any(|x| x.host == o.host && x.port == o.port)
            {
                overrides.push(o);
            }
        }
        Ok(Self { overrides })
    }

    /// From the flags and the process environment.
    pub fn from_env(flags: &[String]) -> Result<Self, String> {
        Self::new(flags, std::env::var(RESOLVE_ENV).ok().as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.overrides.is_empty()
    }

    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }

    /// Where a connection to `host`:`port` goes instead, if it is overridden.
    pub fn lookup(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let matching = |h: &str| {
            self.overrides
                .iter()
                .find(|o| o.host == h && o.port == port)
                .map(|o| o.addr)
        };
        matching(&host).or_else(|| matching("*"))
    }

    /// `url` with its host and port replaced by the override's address, and the host name
    /// TLS must still check (`None`: not overridden, `url` unchanged).
    pub fn rewrite_url(&self, url: &str) -> Result<(String, Option<String>), String> {
        let parsed: http::Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
        let Some(host) = parsed.host() else {
            return Ok((url.to_string(), None));
        };
        let port = parsed
            .port_u16()
            .unwrap_or(if parsed.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let Some(addr) = self.lookup(host, port) else {
            return Ok((url.to_string(), None));
        };
        let scheme = parsed.scheme_str().unwrap_or("http");
        let path = parsed.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let path = if path == "/" && !url.ends_with('/') {
            ""
        } else {
            path
        };
        Ok((format!("{scheme}://{addr}{path}"), Some(host.to_string())))
    }

    /// An HTTP client for `url` that connects where the overrides say (TLS and the `Host`
    /// header keep the name), with `timeout` per request.
    pub fn http_client(&self, url: &str, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder().timeout(timeout);
        if let Ok(parsed) = url.parse::<http::Uri>() {
            if let Some(host) = parsed.host() {
                let port = parsed.port_u16().unwrap_or(match parsed.scheme_str() {
                    Some("https") => 443,
                    _ => 80,
                });
                if let Some(addr) = self.lookup(host, port) {
                    b = b.resolve(host, addr);
                }
            }
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_like_curls_and_take_a_port_of_their_own() {
        let o = Override::parse("API.example.com:6443:10.0.0.5").unwrap();
        assert_eq!(o.host, "api.example.com");
        assert_eq!(o.addr, "10.0.0.5:6443".parse().unwrap());
        let o = Override::parse("web-1.elb.amazonaws.com:80:127.0.0.1:18080").unwrap();
        assert_eq!(o.addr, "127.0.0.1:18080".parse().unwrap());
        let o = Override::parse("h:443:[::1]").unwrap();
        assert_eq!(o.addr, "[::1]:443".parse().unwrap());
        let o = Override::parse("h:443:[::1]:8443").unwrap();
        assert_eq!(o.addr, "[::1]:8443".parse().unwrap());
        for bad in [
            "h:443",
            "h:0:1.2.3.4",
            "h:x:1.2.3.4",
            ":443:1.2.3.4",
            "h:443:nope",
        ] {
            assert!(Override::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_win_over_the_environment_and_lookups_match_host_and_port() {
        let r = Resolver::new(&[], Some("c.example:6443:::1")).unwrap();
        assert_eq!(
            r.lookup("c.example", 6443),
            Some("[::1]:6443".parse().unwrap())
        );
        assert!(Resolver::new(&[], Some("ok.example:80:127.0.0.1 broken")).is_err());
        let r = Resolver::new(
            &["a.example:443:10.0.0.1".into()],
            Some("a.example:443:10.0.0.2, b.example:80:127.0.0.1:9000"),
        )
        .unwrap();
        assert_eq!(
            r.lookup("A.example.", 443),
            Some("10.0.0.1:443".parse().unwrap())
        );
        assert_eq!(r.lookup("a.example", 80), None);
        assert_eq!(
            r.lookup("b.example", 80),
            Some("127.0.0.1:9000".parse().unwrap())
        );
    }

    #[test]
    fn a_star_matches_any_host_on_its_port_and_a_named_host_wins() {
        let r = Resolver::new(
            &[
                "*:6443:127.0.0.1:16443".into(),
                "api.example:6443:10.0.0.9".into(),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            r.lookup("x-123.elb.us-east-1.amazonaws.com", 6443),
            Some("127.0.0.1:16443".parse().unwrap())
        );
        assert_eq!(
            r.lookup("api.example", 6443),
            Some("10.0.0.9:6443".parse().unwrap())
        );
        assert_eq!(r.lookup("x.example", 443), None);
    }

    #[test]
    fn a_rewritten_url_keeps_its_path_and_names_the_host_tls_checks() {
        let r = Resolver::new(&["nlb.example:6443:127.0.0.1:16443".into()], None).unwrap();
        assert_eq!(
            r.rewrite_url("https://nlb.example:6443").unwrap(),
            (
                "https://127.0.0.1:16443".to_string(),
                Some("nlb.example".to_string())
            )
        );
        assert_eq!(
            r.rewrite_url("https://nlb.example:6443/readyz?x=1")
                .unwrap()
                .0,
            "https://127.0.0.1:16443/readyz?x=1"
        );
        assert_eq!(
            r.rewrite_url("https://other.example:6443").unwrap(),
            ("https://other.example:6443".to_string(), None)
        );
    }
}
