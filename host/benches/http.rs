//! Latency of one `POST /score` to the Spin scoring component served by `serve-http`,
//! over a keep-alive HTTP/1.1 connection on 127.0.0.1. Each request instantiates the
//! component afresh, parses the message and computes the score with exact TreeSHAP, NEWS2
//! and alerts. Needs `target/components/spin-score.wasm` (`./dev components`).

use std::path::Path;
use std::sync::Arc;

use cardiowatch::runtime::http::{HttpComponent, HttpLimits, serve};
use criterion::{Criterion, criterion_group, criterion_main};

const LEGACY: &str = r#"{"id": 7, "age": 62, "gender": 1, "height": 170, "weight": 90,
    "ap_hi": 170, "ap_lo": 100, "cholesterol": 3, "gluc": 1, "smoke": 0, "alco": 0,
    "active": 0}"#;

fn bench_score_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/components/spin-score.wasm");
    let component =
        HttpComponent::load(&path, HttpLimits::default()).expect("run ./dev components");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/score", listener.local_addr().unwrap());
    runtime.spawn(serve(listener, Arc::new(component), std::future::pending()));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = || async {
        let response = client.post(&url).body(LEGACY).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.bytes().await.unwrap()
    };
    c.bench_function("serve-http/POST /score legacy, cardio with TreeSHAP", |b| {
        b.iter(|| runtime.block_on(post()))
    });
}

criterion_group!(benches, bench_score_request);
criterion_main!(benches);
