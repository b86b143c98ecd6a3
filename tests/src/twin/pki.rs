//! The twin's certificate authority (a minimal version; the node twin's helper owns the full
//! one). One CA per [`Pki`]; [`Pki::server_config`] presents, for whatever name the client
//! asks for (SNI), a certificate issued on the spot by that CA, so a client that trusts
//! [`Pki::ca_pem`] can reach a twin server under any name a `--resolve` override maps to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// A twin CA and the server certificates it issues.
pub struct Pki {
    ca_pem: String,
    resolver: Arc<SniResolver>,
}

impl Pki {
    /// A fresh CA (ECDSA P-256), valid for the life of the test process.
    pub fn new() -> anyhow::Result<Self> {
        let key = KeyPair::generate().context("generating the twin CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "provisioner twin CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params
            .self_signed(&key)
            .context("self-signing the twin CA")?;
        Ok(Self {
            ca_pem: cert.pem(),
            resolver: Arc::new(SniResolver {
                issuer: Issuer::new(params, key),
                ca_der: cert.der().to_vec(),
                issued: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A TLS server configuration (ring) presenting a certificate for the requested name
    /// (and always for 127.0.0.1 and `localhost`; a client connecting to an IP address
    /// sends no name and gets that one).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(self.resolver.clone());
        Arc::new(config)
    }
}

struct SniResolver {
    issuer: Issuer<'static, KeyPair>,
    ca_der: Vec<u8>,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver").finish_non_exhaustive()
    }
}

impl SniResolver {
    fn issue(&self, name: &str) -> anyhow::Result<Arc<CertifiedKey>> {
        let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        if !sans.iter().any(|s| s == name) {
            sans.push(name.to_owned());
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)?;
        Ok(Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone().into()],
            signing,
        )))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().unwrap_or("localhost").to_owned();
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ck) = issued.get(&name) {
            return Some(ck.clone());
        }
        match self.issue(&name) {
            Ok(ck) => {
                issued.insert(name, ck.clone());
                Some(ck)
            }
            Err(e) => {
                tracing::warn!("twin PKI: cannot issue a certificate for {name}: {e:#}");
                None
            }
        }
    }
}
