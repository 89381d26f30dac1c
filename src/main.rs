//! The `stigmer` binary: parse arguments, run the command, exit with its code.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stigmer::cli::run(&stigmer::cli::Cli::parse())
}
