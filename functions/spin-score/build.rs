//! Bakes the model named by `CARDIOWATCH_MODEL_MANIFEST` into this component, exactly as
//! the score component's build script does (default `models/cardio/manifest.toml`).

use std::path::Path;

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Err(error) = cardiowatch_core::package::bake_for_build_script(&workspace) {
        eprintln!("error: cannot bake the model: {error}");
        std::process::exit(1);
    }
}
