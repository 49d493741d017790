//! TLS for the nodes' servers: a certificate from PEM files or a self-signed one made at start, offered
//! with ALPN `h2` and `http/1.1` (gRPC clients ask for `h2`). The only module that names rustls and rcgen.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum TlsError {
    #[error("reading the certificate {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("reading the private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("making a self-signed certificate: {0}")]
    SelfSigned(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A server's TLS configuration: its certificate chain and key, with ALPN `h2` and `http/1.1`.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<rustls::ServerConfig>,
    /// DER of the leaf certificate (what a trust-on-first-use client pins).
    leaf: Vec<u8>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").field("leaf_bytes", &self.leaf.len()).finish()
    }
}

impl TlsConfig {
    /// A fresh self-signed certificate (ECDSA P-256) naming `names` (DNS names or IP addresses),
    /// made in memory and never written anywhere.
    pub fn self_signed(names: &[String]) -> Result<TlsConfig, TlsError> {
        let made =
            rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| TlsError::SelfSigned(e.to_string()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        TlsConfig::new(vec![made.cert.der().clone()], key)
    }

    /// The certificate chain (leaf first) and private key in PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let cert_err = |reason: String| TlsError::Cert { path: cert.display().to_string(), reason };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(e.to_string()))?;
        if chain.is_empty() {
            return Err(cert_err("no CERTIFICATE block".into()));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| TlsError::Key { path: key.display().to_string(), reason: e.to_string() })?;
        TlsConfig::new(chain, key)
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<TlsConfig, TlsError> {
        let leaf = chain.first().map(|c| c.to_vec()).unwrap_or_default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsConfig { server: Arc::new(server), leaf })
    }

    /// The leaf certificate, DER.
    pub fn leaf_der(&self) -> &[u8] {
        &self.leaf
    }
}

/// How a server's connections are carried.
#[derive(Clone, Debug, Default)]
pub enum Transport {
    /// Plain HTTP (HTTP/1.1 and h2c).
    #[default]
    Plain,
    /// TLS only.
    Tls(TlsConfig),
    /// Both on one port, told apart by a connection's first byte: 0x16 (a TLS handshake record)
    /// is TLS, anything else plain HTTP (whose first byte is a method's letter or the h2c preface).
    Sniffed(TlsConfig),
}

/// The first byte of a TLS handshake record.
pub(crate) const TLS_HANDSHAKE: u8 = 0x16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_makes_a_config_with_h2() {
        let tls = TlsConfig::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        assert_eq!(tls.server.alpn_protocols[0], b"h2");
        assert!(!tls.leaf_der().is_empty());
    }

    fn pem(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn pem_files_are_read_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("byoc-net-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, pem("CERTIFICATE", made.cert.der())).unwrap();
        std::fs::write(&key, pem("PRIVATE KEY", &made.signing_key.serialize_der())).unwrap();
        let tls = TlsConfig::from_pem_files(&cert, &key).unwrap();
        assert_eq!(tls.leaf_der(), made.cert.der().as_ref());
        std::fs::write(&key, "not a key").unwrap();
        assert!(matches!(TlsConfig::from_pem_files(&cert, &key), Err(TlsError::Key { .. })));
        assert!(matches!(TlsConfig::from_pem_files(&dir.join("none.pem"), &key), Err(TlsError::Cert { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
