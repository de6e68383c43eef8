//! Bakes the model named by `CARDIOWATCH_MODEL_MANIFEST` into this component.
//!
//! The manifest path is absolute or relative to the workspace root, default
//! `models/cardio/manifest.toml`. The model is validated here, so an unsupported model
//! fails the build with the reason, and written as static Rust data to `$OUT_DIR`.

use std::path::Path;

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Err(error) = cardiowatch_core::package::bake_for_build_script(&workspace) {
        eprintln!("error: cannot bake the model: {error}");
        std::process::exit(1);
    }
}
