//! The dashboard in a real headless browser: `cardiowatch up` runs, Playwright drives
//! Debian's Chromium to the printed URL, and the page must show ranked patients and an
//! alert and keep updating. The test saves a screenshot to `target/dashboard.png`.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills the host when the test ends, whatever the outcome.
struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `browser/dashboard.mjs` (Playwright driving Debian's Chromium) against `url`.
fn browse(url: &str, screenshot: &Path) -> Value {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: install Debian's `chromium` package (./dev test does)"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci` in host/tests/browser (./dev test does)"
    );
    let output = Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(url)
        .arg(screenshot)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "browser script failed: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Starts `up` and returns it with the dashboard URL and a channel of its stdout lines.
fn start_host(state_dir: &std::path::Path) -> (Host, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cardiowatch"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--duration-s",
            "120",
            "--patients",
            "40",
        ])
        .arg("--state-dir")
        .arg(state_dir)
        .current_dir(common::repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cardiowatch up starts");
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let host = Host(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("up printed its dashboard URL");
        if let Some(url) = line.strip_prefix("dashboard: ") {
            return (host, url.to_string(), lines);
        }
    }
    panic!("up did not print a dashboard URL within 60 s");
}

#[test]
fn dashboard_shows_ranked_patients_and_alerts() {
    let state_dir = tempfile::tempdir().unwrap();
    let (_host, url, lines) = start_host(state_dir.path());
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut alert_seen = false;
    while !alert_seen && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
            alert_seen = ["URGENT", "EMERGENCY", "INFO"]
                .iter()
                .any(|s| line.starts_with(s));
        }
    }
    assert!(alert_seen, "up printed no alert within 90 s");

    let screenshot = common::repo_root().join("target/dashboard.png");
    let seen = browse(&url, &screenshot);
    let number = |key: &str| {
        seen[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {seen}"))
    };
    assert!(number("rows") >= 10.0, "ranked patient rows: {seen}");
    assert!(number("alerts") >= 1.0, "alerts in the feed: {seen}");
    assert!(number("sparklines") >= 10.0, "sparklines: {seen}");
    assert!(
        number("liveUpdates") > 0.0,
        "no live update over the event stream: {seen}"
    );
    assert!(
        number("recordsAfter") > number("recordsBefore"),
        "counters did not advance: {seen}"
    );
    let bands: Vec<u64> = seen["riskBands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|band| band.as_u64().unwrap())
        .collect();
    assert!(
        bands.windows(2).all(|pair| pair[0] >= pair[1]),
        "rows not ranked by NEWS2 band: {bands:?}"
    );
    assert_eq!(
        number("wrongTokenRows"),
        0.0,
        "a wrong token must show no patient: {seen}"
    );
    assert!(
        seen["wrongTokenStatus"]
            .as_str()
            .unwrap()
            .contains("unauthorized"),
        "{seen}"
    );
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "screenshot missing or empty: {size} bytes");
}
