//! Bakes the model named by `CARDIOWATCH_MODEL_MANIFEST` into this component.
//!
//! The manifest path is absolute or relative to the workspace root, default
//! `models/cardio/manifest.toml`. The model is validated here, so an unsupported model
//! fails the build with the reason, and written as static Rust data to `$OUT_DIR`.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=CARDIOWATCH_MODEL_MANIFEST");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = std::env::var_os("CARDIOWATCH_MODEL_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models/cardio/manifest.toml"));
    let manifest = if manifest.is_absolute() {
        manifest
    } else {
        workspace.join(manifest)
    };

    let package = match cardiowatch_core::package::load(&manifest) {
        Ok(package) => package,
        Err(error) => {
            eprintln!("error: cannot package {}: {error}", manifest.display());
            std::process::exit(1);
        }
    };
    for input in &package.inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = cardiowatch_core::package::generate_rust(&package);
    std::fs::write(out.join("model.rs"), source).expect("failed to write model.rs to OUT_DIR");
}
