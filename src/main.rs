//! The `taskbench` command line: parse the arguments, run one command, exit
//! with its code — 0 ok, 1 the run failed (a task failed or did not end, a
//! result could not be written), 2 bad usage or input (found before the
//! first job runs), 3 a regression (`compare`, `ab`, `history check`),
//! 130 or 143 when
//! SIGINT or SIGTERM stopped a run (its result is written, marked
//! `interrupted`). A closed stdout ends the program quietly.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};
use taskbench::metrics::CountingAllocator;

#[global_allocator]
static ALLOC: CountingAllocator<mimalloc::MiMalloc> = CountingAllocator(mimalloc::MiMalloc);

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::interrupt::install();
    let done = match cli.command {
        Command::Run(args) => cli::run::run(args),
        Command::Sweep(args) => cli::sweep::sweep(args),
        Command::Compare(args) => cli::compare::compare(&args),
        Command::Ab(args) => cli::ab::ab(args),
        Command::History(args) => cli::history::history(args),
        Command::List => cli::inspect::list(),
        Command::Validate(args) => cli::inspect::validate(&args),
        Command::Schema => cli::inspect::schema(),
        Command::Demo(args) => cli::demo::demo(&args),
        Command::Flink(command) => cli::flink::flink(command),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.exit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
