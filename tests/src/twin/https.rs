//! A minimal HTTPS/1.1 client over rustls (ring) with explicit roots, for the twin's own calls
//! to the twin's servers (the k3s stand-in, tests). reqwest in this workspace is built without
//! TLS, and enabling its rustls feature would change every other crate's client.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;

/// An HTTPS client trusting the roots of its TLS configuration.
#[derive(Clone)]
pub struct HttpsClient {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient").finish_non_exhaustive()
    }
}

impl HttpsClient {
    pub fn new(config: rustls::ClientConfig) -> Self {
        Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout: Duration::from_secs(30),
        }
    }

    /// Sends one request to `url` (`https://host[:port]/path`) on a new connection; the answer's
    /// status and body. `headers` are added as given.
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(http::StatusCode, Bytes)> {
        tokio::time::timeout(self.timeout, self.send_inner(method, url, headers, body))
            .await
            .with_context(|| format!("{url}: no answer within {:?}", self.timeout))?
    }

    async fn send_inner(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(http::StatusCode, Bytes)> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("`{url}` is not a URL"))?;
        if uri.scheme_str() != Some("https") {
            bail!("`{url}` is not an https URL");
        }
        let host = uri.host().context("a URL without a host")?.to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .with_context(|| format!("connecting to {host}:{port}"))?;
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .with_context(|| format!("`{host}` is not a TLS server name"))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS with {host}:{port}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        let driver = tokio::spawn(conn);
        let authority = uri.authority().context("a URL without a host")?.as_str();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, authority);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        driver.abort();
        Ok((status, body))
    }

    /// POSTs `body` as JSON, with a bearer token when given.
    pub async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<(http::StatusCode, Bytes)> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        self.send(
            http::Method::POST,
            url,
            &headers,
            Bytes::from(body.to_string()),
        )
        .await
    }
}
