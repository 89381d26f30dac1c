//! The `stigmer` binary: parse arguments, run the command, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    stigmer::cli::run(&stigmer::cli::Cli::parse())
}
