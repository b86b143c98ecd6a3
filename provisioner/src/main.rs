use std::process::ExitCode;

use clap::Parser;
use provisioner::cli::{self, Cli};

fn main() -> ExitCode {
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
