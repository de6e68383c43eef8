//! `cardiowatch`: real-time cardiac risk scoring and alerting over Kafka, with each
//! hospital's preprocess, model and alert rules running as WebAssembly components.

use cardiowatch::cli;
use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the level chosen by `-v`.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,cardiowatch=info",
        1 => "info,cardiowatch=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
