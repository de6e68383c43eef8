//! The admin server over HTTPS, with a test CA and a 127.0.0.1 server certificate made by
//! the `openssl` CLI. Covers clients with and without that CA, plain HTTP to the TLS port,
//! and the start-up errors of incomplete or wrong `[admin]` TLS settings.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cardiowatch::admin::tls::{self, TlsError};
use cardiowatch::admin::{TokenStore, serve_with_tls};
use cardiowatch::telemetry::Telemetry;

/// Runs `openssl` with `args` in `dir` and panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI runs");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Test PKI in a temporary directory: `ca.pem`, `server.pem` and `server.key` for
/// IP 127.0.0.1 signed by that CA, and `other.key`, a P-256 key of no certificate.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let p256 = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=cardiowatch test CA",
        ];
        ca.extend(p256);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(path, &ca);
        let mut request = vec!["req", "-subj", "/CN=127.0.0.1"];
        request.extend(p256);
        request.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(path, &request);
        std::fs::write(
            path.join("server.ext"),
            "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n\
             keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        openssl(
            path,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let mut other = vec!["genpkey", "-algorithm", "EC", "-pkeyopt"];
        other.extend(["ec_paramgen_curve:prime256v1", "-out", "other.key"]);
        openssl(path, &other);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn client_with_ca(&self) -> reqwest::Client {
        let pem = std::fs::read(self.path("ca.pem")).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }
}

async fn start_tls_server(pki: &Pki) -> std::net::SocketAddr {
    let config = tls::load(Some(&pki.path("server.pem")), Some(&pki.path("server.key")))
        .expect("the test certificate loads")
        .expect("both paths are set");
    let (address, _task) = serve_with_tls(
        "127.0.0.1:0".parse().unwrap(),
        Some(config),
        Arc::new(Telemetry::default()),
        Arc::new(TokenStore::default()),
        None,
    )
    .await
    .unwrap();
    address
}

#[tokio::test]
async fn https_with_private_ca_serves_router() {
    let pki = Pki::generate();
    let address = start_tls_server(&pki).await;
    let response = pki
        .client_with_ca()
        .get(format!("https://{address}/healthz"))
        .send()
        .await
        .expect("HTTPS request with the test CA succeeds");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
}

#[tokio::test]
async fn plain_http_to_tls_port_fails() {
    let pki = Pki::generate();
    let address = start_tls_server(&pki).await;
    let result = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .send()
        .await;
    assert!(result.is_err(), "plain HTTP got a response: {result:?}");
}

#[tokio::test]
async fn client_without_ca_is_rejected() {
    let pki = Pki::generate();
    let address = start_tls_server(&pki).await;
    let result = reqwest::Client::new()
        .get(format!("https://{address}/healthz"))
        .send()
        .await;
    let error = result.expect_err("a client without the test CA must not connect");
    assert!(
        error.is_connect(),
        "expected a connect error, got {error:?}"
    );
}

#[test]
fn tls_config_errors_name_file_and_fix() {
    let pki = Pki::generate();
    let cert = pki.path("server.pem");
    let key = pki.path("server.key");

    assert!(matches!(tls::load(None, None), Ok(None)));

    let error = tls::load(Some(&cert), None).unwrap_err();
    assert!(matches!(error, TlsError::Incomplete { .. }));
    let message = error.to_string();
    assert!(message.contains("tls_key"), "{message}");
    assert!(message.contains("set both"), "{message}");

    let error = tls::load(None, Some(&key)).unwrap_err();
    assert!(error.to_string().contains("not tls_cert"), "{error}");

    let missing = pki.path("missing.pem");
    let error = tls::load(Some(&missing), Some(&key)).unwrap_err();
    assert!(matches!(error, TlsError::Unreadable { .. }));
    assert!(error.to_string().contains("missing.pem"), "{error}");

    // A key file that holds only a certificate.
    let error = tls::load(Some(&cert), Some(&cert)).unwrap_err();
    assert!(matches!(error, TlsError::Invalid { .. }));
    assert!(error.to_string().contains("no private key"), "{error}");

    // A certificate file that holds only a key.
    let error = tls::load(Some(&key), Some(&key)).unwrap_err();
    assert!(matches!(error, TlsError::Invalid { .. }));
    assert!(error.to_string().contains("BEGIN CERTIFICATE"), "{error}");

    let error = tls::load(Some(&cert), Some(&pki.path("other.key"))).unwrap_err();
    assert!(matches!(error, TlsError::Mismatch { .. }));
    let message = error.to_string();
    assert!(message.contains("other.key"), "{message}");
    assert!(message.contains("does not match"), "{message}");
}
