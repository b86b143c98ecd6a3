use std::process::ExitCode;

use clap::Parser;
use provisioner::cli::{self, Cli};

fn main() -> ExitCode {
    exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    cli::init_logging(cli.verbose);
    if cli.local {
        cli::default_emulator_credentials();
    }
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(cli::run(cli)),
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

/// `provisioner status | head` closes our stdout early; `println!` then panics with "failed
/// printing to stdout: Broken pipe". Like any Unix filter, exit quietly instead (128 + SIGPIPE);
/// every other panic keeps the default report.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
