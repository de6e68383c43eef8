//! Loading components: the role's world is enforced at load time, and guests see no
//! clock, environment or filesystem.

mod common;

use std::path::Path;

use cardiowatch::runtime::{Role, RuntimeError};

fn load_error(role: Role, bytes: &[u8]) -> String {
    let runtime = common::runtime();
    match runtime.load_bytes(role, Path::new("upload.wasm"), bytes) {
        Ok(_) => panic!("{role} accepted invalid bytes"),
        Err(error @ RuntimeError::Invalid { .. }) => error.to_string(),
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

#[test]
fn rejects_bytes_that_are_not_wasm() {
    let error = load_error(Role::Score, b"definitely not a component");
    assert!(
        error.contains("invalid score component upload.wasm"),
        "{error}"
    );
}

#[test]
fn rejects_core_module() {
    let error = load_error(Role::Preprocess, b"\0asm\x01\0\0\0");
    assert!(error.contains("invalid preprocess component"), "{error}");
}

#[test]
fn rejects_component_of_another_world() {
    let preprocess = std::fs::read(common::component("preprocess.wasm")).unwrap();
    let error = load_error(Role::Score, &preprocess);
    assert!(error.contains("cardiowatch:pipeline/score"), "{error}");
}

#[test]
fn accepts_each_component_for_its_role() {
    let runtime = common::runtime();
    for (role, name) in [
        (Role::Preprocess, "preprocess.wasm"),
        (Role::Score, "score-cardio.wasm"),
        (Role::Score, "score-uci.wasm"),
        (Role::AlertRules, "alert-rules.wasm"),
    ] {
        let loaded = runtime.load(role, &common::component(name)).unwrap();
        assert_eq!(loaded.info.role, role);
        assert_eq!(loaded.info.sha256.len(), 64);
    }
}
