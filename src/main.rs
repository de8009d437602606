#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use plugboard::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd(args) => plugboard::cli::crd(&args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => plugboard::cli::run(*args).await.map(|()| ExitCode::SUCCESS),
        Command::Validate(args) => plugboard::cli::validate(&args).await,
        Command::Dev(args) => plugboard::cli::dev(*args).await.map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One readable line, no backtrace: this is what a person sees in a terminal or in
            // `kubectl logs` of a crash-looping pod.
            eprintln!("plugboard: {err}");
            ExitCode::FAILURE
        }
    }
}
