//! HTTPS for the admin server: loads `[admin] tls_cert` and `tls_key` once at start-up
//! and serves the router over rustls 0.21 (ring), one task per connection.
//!
//! In: the two PEM paths and a bound listener. Out: a running accept loop, or a
//! [`TlsError`] that names the file and the fix.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, Certificate, PrivateKey, ServerConfig, SignatureScheme};

/// How long a client has to finish the TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Failure to load the admin server's TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of the two settings is present.
    #[error(
        "[admin] sets {set} but not {missing}: set both tls_cert and tls_key to serve HTTPS, \
         or neither to serve plain HTTP"
    )]
    Incomplete {
        /// The setting that is present.
        set: &'static str,
        /// The setting that is missing.
        missing: &'static str,
    },
    /// A file could not be opened or read.
    #[error("failed to read [admin] {field} {path:?}: {source}")]
    Unreadable {
        /// The setting that names the file.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holds no PEM item of the expected kind.
    #[error("invalid [admin] {field} {path:?}: {reason}")]
    Invalid {
        /// The setting that names the file.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error(
        "[admin] tls_key {key:?} does not match the certificate in tls_cert {cert:?}: \
         use the key the certificate was issued for"
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// Loads the server TLS configuration when both paths are set; `None` when neither is.
///
/// # Errors
///
/// [`TlsError`] when only one path is set, a file is unreadable or holds no certificate
/// or key, or the key does not match the certificate.
pub fn load(
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    let (cert_path, key_path) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(TlsError::Incomplete {
                set: "tls_cert",
                missing: "tls_key",
            });
        }
        (None, Some(_)) => {
            return Err(TlsError::Incomplete {
                set: "tls_key",
                missing: "tls_cert",
            });
        }
        (Some(cert), Some(key)) => (cert, key),
    };
    let chain = read_certificates(cert_path)?;
    let key = read_private_key(key_path)?;
    check_key_matches(&chain[0], &key).map_err(|()| TlsError::Mismatch {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
    })?;
    let config = ServerConfig::builder()
        .with_safe_defaults()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Invalid {
            field: "tls_key",
            path: key_path.to_path_buf(),
            reason: format!("rustls rejected the certificate and key: {error}"),
        })?;
    Ok(Some(Arc::new(config)))
}

fn open(field: &'static str, path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsError::Unreadable {
            field,
            path: path.to_path_buf(),
            source,
        })
}

fn read_certificates(path: &Path) -> Result<Vec<Certificate>, TlsError> {
    let certs = rustls_pemfile::certs(&mut open("tls_cert", path)?).map_err(|source| {
        TlsError::Unreadable {
            field: "tls_cert",
            path: path.to_path_buf(),
            source,
        }
    })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            field: "tls_cert",
            path: path.to_path_buf(),
            reason: "no `BEGIN CERTIFICATE` block found: expected a PEM certificate chain, \
                     leaf first"
                .into(),
        });
    }
    Ok(certs.into_iter().map(Certificate).collect())
}

fn read_private_key(path: &Path) -> Result<PrivateKey, TlsError> {
    let items = rustls_pemfile::read_all(&mut open("tls_key", path)?).map_err(|source| {
        TlsError::Unreadable {
            field: "tls_key",
            path: path.to_path_buf(),
            source,
        }
    })?;
    items
        .into_iter()
        .find_map(|item| match item {
            rustls_pemfile::Item::PKCS8Key(der)
            | rustls_pemfile::Item::RSAKey(der)
            | rustls_pemfile::Item::ECKey(der) => Some(PrivateKey(der)),
            _ => None,
        })
        .ok_or_else(|| TlsError::Invalid {
            field: "tls_key",
            path: path.to_path_buf(),
            reason: "no private key found: expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` \
                     or `EC PRIVATE KEY` block"
                .into(),
        })
}

/// Signs a fixed message with `key` and verifies it with the public key of `leaf`.
///
/// rustls 0.21 does not compare a certificate with its key, so without this check a
/// mismatched pair would start and then fail every handshake.
fn check_key_matches(leaf: &Certificate, key: &PrivateKey) -> Result<(), ()> {
    const SCHEMES: [(SignatureScheme, &webpki::SignatureAlgorithm); 5] = [
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &webpki::ECDSA_P256_SHA256,
        ),
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &webpki::ECDSA_P384_SHA384,
        ),
        (SignatureScheme::ED25519, &webpki::ED25519),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &webpki::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &webpki::RSA_PKCS1_2048_8192_SHA256,
        ),
    ];
    let message = b"cardiowatch admin key check";
    let signing_key = rustls::sign::any_supported_type(key).map_err(|_| ())?;
    let offered: Vec<SignatureScheme> = SCHEMES.iter().map(|(scheme, _)| *scheme).collect();
    let signer = signing_key.choose_scheme(&offered).ok_or(())?;
    let signature = signer.sign(message).map_err(|_| ())?;
    let (_, algorithm) = SCHEMES
        .iter()
        .find(|(scheme, _)| *scheme == signer.scheme())
        .ok_or(())?;
    let certificate = webpki::EndEntityCert::try_from(leaf.0.as_slice()).map_err(|_| ())?;
    certificate
        .verify_signature(algorithm, message, &signature)
        .map_err(|_| ())
}

/// Accepts connections on `listener` and serves `app` over TLS until the task is dropped.
pub(super) async fn accept_loop(listener: TcpListener, config: Arc<ServerConfig>, app: Router) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually too many open files: back off rather than spin.
                tracing::warn!(%error, "admin server failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        // Debug level: any client on the network can cause these.
                        tracing::debug!(%peer, %error, "admin TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "admin TLS handshake timed out");
                        return;
                    }
                };
            let service = TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "admin HTTPS connection closed with an error");
            }
        });
    }
}
