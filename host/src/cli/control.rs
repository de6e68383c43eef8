//! `deploy`, `rollback`, `versions`, `thresholds` and `config export`: clients of a
//! running host's component API.

use std::path::PathBuf;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};

use crate::registry::{ChangeReport, HospitalState};
use crate::runtime::Role;

/// The API's address and the caller's token.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Base URL of a running host's admin server.
    #[arg(long, env = "CARDIOWATCH_URL", default_value = "http://127.0.0.1:8787")]
    url: String,
    /// API token: the operator's, or the hospital's own.
    #[arg(long, env = "CARDIOWATCH_TOKEN", hide_env_values = true)]
    token: String,
    /// PEM file of a CA certificate to trust for an https:// URL, in addition to the
    /// system's roots: for a host whose certificate comes from a private CA.
    #[arg(long, env = "CARDIOWATCH_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

/// Options of `deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Hospital id.
    hospital: String,
    /// Role: preprocess, score or alert-rules.
    role: Role,
    /// The component (`.wasm`).
    file: PathBuf,
    /// A label recorded with the version, such as a release number.
    #[arg(long)]
    label: Option<String>,
}

/// Options of `rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Hospital id.
    hospital: String,
    /// Role: preprocess, score or alert-rules.
    role: Role,
    /// sha256 of the version to return to (default: the previous good one).
    #[arg(long)]
    to: Option<String>,
}

/// Options of `versions`.
#[derive(Debug, clap::Args)]
pub struct VersionsArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Only this hospital.
    hospital: Option<String>,
    /// Print the JSON the API returned.
    #[arg(long)]
    json: bool,
}

/// Options of `thresholds`.
#[derive(Debug, clap::Args)]
pub struct ThresholdsArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Hospital id.
    hospital: String,
    /// Changes as `name=value`, such as `model_probability=0.65`; none prints the current ones.
    settings: Vec<String>,
}

/// `config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Write the hospitals as the control topic has them back as hospital files and
    /// component files.
    Export(ExportArgs),
}

/// Options of `config export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Directory to write `<id>.toml` and `components/<sha256>.wasm` into.
    #[arg(long)]
    out: PathBuf,
}

/// Builds the HTTP client, trusting `ca_cert` as well as the system's roots when given.
///
/// # Errors
///
/// Fails when `ca_cert` cannot be read or holds no PEM certificate.
fn http_client(ca_cert: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("failed to read --ca-cert {}", path.display()))?;
        let certificate = reqwest::Certificate::from_pem(&pem).with_context(|| {
            format!(
                "invalid --ca-cert {}: expected a PEM `BEGIN CERTIFICATE` block",
                path.display()
            )
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().context("failed to build the HTTP client")
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(api: &ApiArgs) -> anyhow::Result<Self> {
        Ok(Client {
            http: http_client(api.ca_cert.as_deref())?,
            base: api.url.trim_end_matches('/').to_string(),
            token: api.token.clone(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "failed to reach {url}: is `cardiowatch run` or `up` listening there? Set --url"
            )
        })?;
        let status = response.status();
        let body = response.bytes().await?.to_vec();
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| {
                value
                    .get("error")
                    .and_then(|e| e.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        let hint = match status {
            StatusCode::UNAUTHORIZED => " (check --token or CARDIOWATCH_TOKEN)",
            _ => "",
        };
        anyhow::bail!("{status}: {message}{hint}")
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<T> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).context("the API answered with unexpected JSON")
    }
}

fn print_report(report: &ChangeReport) {
    let change = &report.change;
    let what = match (&change.role, &change.sha256) {
        (Some(role), Some(sha256)) => format!("{role} {}", short(sha256)),
        _ => change.detail.clone(),
    };
    println!(
        "{} {:?}: {what} is live (revision {}, validated in {} ms, live after {} ms)",
        change.hospital, change.action, change.revision, report.validate_ms, report.live_ms
    );
}

fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

/// `deploy`.
pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("failed to read {}", args.file.display()))?;
    let mut path = format!("/api/hospitals/{}/components/{}", args.hospital, args.role);
    if let Some(label) = &args.label {
        let encoded: String = url_encode(label);
        path.push_str(&format!("?label={encoded}"));
    }
    let report: ChangeReport = Client::new(&args.api)?
        .json(Method::POST, &path, Some(bytes))
        .await?;
    print_report(&report);
    Ok(())
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `rollback`.
pub async fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let body = serde_json::json!({ "role": args.role, "to": args.to });
    let report: ChangeReport = Client::new(&args.api)?
        .json(
            Method::POST,
            &format!("/api/hospitals/{}/rollback", args.hospital),
            Some(serde_json::to_vec(&body)?),
        )
        .await?;
    print_report(&report);
    Ok(())
}

/// `versions`.
pub async fn versions(args: VersionsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    let states: Vec<HospitalState> = match &args.hospital {
        Some(hospital) => vec![
            client
                .json(Method::GET, &format!("/api/hospitals/{hospital}"), None)
                .await?,
        ],
        None => client.json(Method::GET, "/api/hospitals", None).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&states)?);
        return Ok(());
    }
    for state in &states {
        println!("{} (revision {})", state.hospital, state.revision);
        for role in Role::ALL {
            println!("  {role}:");
            for version in state.versions.iter().filter(|v| v.role == role) {
                let marker = if state.active.get(role) == version.sha256 {
                    "*"
                } else if state.quarantined.contains(&version.sha256) {
                    "q"
                } else {
                    " "
                };
                println!(
                    "    {marker} {}  {:>8} bytes  {}  {}  by {}",
                    short(&version.sha256),
                    version.size_bytes,
                    version.model.as_deref().unwrap_or("-"),
                    version.label.as_deref().unwrap_or("-"),
                    version.deployed_by
                );
            }
        }
        println!("  last changes:");
        for change in state.history.iter().rev().take(5) {
            println!(
                "    r{} {:?} by {}{}",
                change.revision,
                change.action,
                change.by,
                if change.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", change.detail)
                }
            );
        }
    }
    println!("(* active, q quarantined)");
    Ok(())
}

/// `thresholds`.
pub async fn thresholds(args: ThresholdsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    if args.settings.is_empty() {
        let state: HospitalState = client
            .json(
                Method::GET,
                &format!("/api/hospitals/{}", args.hospital),
                None,
            )
            .await?;
        println!("{}", toml::to_string_pretty(&state.thresholds)?);
        return Ok(());
    }
    let mut patch = serde_json::Map::new();
    for setting in &args.settings {
        let (name, value) = setting.split_once('=').with_context(|| {
            format!("invalid setting {setting:?}: write name=value, such as model_probability=0.65")
        })?;
        let value = serde_json::from_str(value.trim())
            .unwrap_or_else(|_| serde_json::Value::String(value.trim().to_string()));
        patch.insert(name.trim().to_string(), value);
    }
    let report: ChangeReport = client
        .json(
            Method::PUT,
            &format!("/api/hospitals/{}/thresholds", args.hospital),
            Some(serde_json::to_vec(&patch)?),
        )
        .await?;
    print_report(&report);
    Ok(())
}

/// `config export`.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    let states: Vec<HospitalState> = client.json(Method::GET, "/api/hospitals", None).await?;
    let mut blobs = std::collections::HashMap::new();
    for state in &states {
        for role in Role::ALL {
            let sha256 = state.active.get(role).to_string();
            if let std::collections::hash_map::Entry::Vacant(entry) = blobs.entry(sha256) {
                let path = format!("/api/components/{}", entry.key());
                entry.insert(client.call(Method::GET, &path, None).await?);
            }
        }
    }
    let written = crate::registry::export(&args.out, &states, |sha256| {
        blobs
            .get(sha256)
            .cloned()
            .with_context(|| format!("component {sha256} was not downloaded"))
    })?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
