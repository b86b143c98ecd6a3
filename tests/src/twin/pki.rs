//! The twin's certificate authority: every HTTPS name a node reaches (`ssm.<region>.amazonaws.com`,
//! `github.com`, a mirror, the NLB's DNS name, `127.0.0.1`) is served under this one CA, whose
//! certificate the nodes trust instead of the public roots (`cacert` in their `.curlrc`).
//!
//! Leaf certificates are issued on demand for whatever name the client asks for in SNI (no SNI,
//! as when a client connects to an IP address: `127.0.0.1` and `localhost`), and cached.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The name a leaf is issued for when the client sends no SNI (it connected to an address).
const NO_SNI_NAME: &str = "127.0.0.1";

/// The twin CA. Cheap to clone; every clone issues from, and caches into, the same CA.
#[derive(Clone)]
pub struct Pki {
    inner: Arc<Inner>,
}

struct Inner {
    ca: CertifiedIssuer<'static, KeyPair>,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

impl Pki {
    /// A new CA (ECDSA P-256, self-signed).
    pub fn new() -> Result<Pki> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "proximity node twin CA");
        dn.push(DnType::OrganizationName, "proximity test harness");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().context("generating the twin CA key")?;
        let ca = CertifiedIssuer::self_signed(params, key).context("self-signing the twin CA")?;
        Ok(Pki {
            inner: Arc::new(Inner {
                ca,
                leaves: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.inner.ca.pem()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.inner.ca.der().clone()
    }

    /// Writes the CA certificate (PEM) to `path`.
    pub fn write_ca_pem(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.ca_pem()).with_context(|| format!("writing {}", path.display()))
    }

    /// A TLS server configuration (ring provider, TLS 1.2 and 1.3, no client certificates)
    /// that presents, for any SNI name, a leaf issued by this CA. No ALPN is set: clients speak
    /// HTTP/1.1.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        Arc::new(config)
    }

    /// A TLS client configuration trusting this CA only.
    pub fn client_config(&self) -> rustls::ClientConfig {
        client_config_trusting(&[self.ca_der()])
    }

    /// An HTTPS client trusting this CA only.
    pub fn https_client(&self) -> super::https::HttpsClient {
        super::https::HttpsClient::new(self.client_config())
    }

    /// The leaf for `name` (a DNS name or an IP address), issued once and cached.
    pub fn leaf(&self, name: &str) -> Result<Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        let mut leaves = self.inner.leaves.lock().expect("pki cache");
        if let Some(found) = leaves.get(&name) {
            return Ok(found.clone());
        }
        let issued = Arc::new(self.issue(&name)?);
        leaves.insert(name, issued.clone());
        Ok(issued)
    }

    fn issue(&self, name: &str) -> Result<CertifiedKey> {
        let mut sans = vec![name.to_owned()];
        if name == NO_SNI_NAME {
            sans.push("localhost".to_owned());
        }
        let mut params = CertificateParams::new(sans)
            .with_context(|| format!("`{name}` is not a name a certificate can carry"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = params
            .signed_by(&key, &self.inner.ca)
            .with_context(|| format!("issuing a leaf for {name}"))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing =
            rustls::crypto::ring::sign::any_supported_type(&der).context("loading the leaf key")?;
        Ok(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der()],
            signing,
        ))
    }
}

impl ResolvesServerCert for Pki {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().unwrap_or(NO_SNI_NAME);
        match self.leaf(name) {
            Ok(leaf) => Some(leaf),
            Err(e) => {
                eprintln!("twin pki: no certificate for `{name}`: {e:#}");
                None
            }
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client configuration (ring provider) trusting exactly `roots`.
pub fn client_config_trusting(roots: &[CertificateDer<'static>]) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("a CA certificate");
    }
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(store)
        .with_no_client_auth()
}

/// The certificates of a PEM file (for clients given the CA as a file, as the stand-in is).
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .context("reading PEM certificates")?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in the PEM data");
    Ok(certs)
}
