//! Host-side bindings of the three component worlds, generated from `wit/`.
//!
//! The `types` interface is generated once, in the preprocessor bindings, and shared by
//! the other two worlds, so one `Vitals` record passes from role to role unchanged.

/// Bindings of the `preprocessor` world.
#[allow(missing_docs)]
pub mod preprocessor {
    wasmtime::component::bindgen!({ world: "preprocessor", path: "../wit" });
}

/// Bindings of the `scorer` world.
#[allow(missing_docs)]
pub mod scorer {
    wasmtime::component::bindgen!({
        world: "scorer",
        path: "../wit",
        with: { "cardiowatch:pipeline/types": super::preprocessor::cardiowatch::pipeline::types },
    });
}

/// Bindings of the `alerter` world.
#[allow(missing_docs)]
pub mod alerter {
    wasmtime::component::bindgen!({
        world: "alerter",
        path: "../wit",
        with: { "cardiowatch:pipeline/types": super::preprocessor::cardiowatch::pipeline::types },
    });
}

pub use alerter::exports::cardiowatch::pipeline::alert_rules;
pub use preprocessor::cardiowatch::pipeline::types;
pub use preprocessor::exports::cardiowatch::pipeline::preprocess;
pub use scorer::exports::cardiowatch::pipeline::score;
