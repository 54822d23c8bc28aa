//! The `taskbench` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use taskbench::bench::channel::{run_channel, ChannelRun};
use taskbench::metrics::CountingAllocator;
use taskbench::network::Partitioner;

#[global_allocator]
static ALLOC: CountingAllocator<mimalloc::MiMalloc> = CountingAllocator(mimalloc::MiMalloc);

/// Apache Flink's task runtime in one process, and a benchmark engine around it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Two threads, one partition → one gate: records/s and bytes/s of the
    /// data path (serializer, pool, rings, deserializer). The default.
    Demo(DemoArgs),
}

#[derive(Debug, Parser)]
struct DemoArgs {
    /// Records to send.
    #[arg(long, default_value_t = 20_000_000)]
    records: u64,
    /// Bytes per record (at least 8).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Subpartitions (= input channels), round-robin.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Segment size in bytes (power of two, 4096 ..= 1048576).
    #[arg(long, default_value_t = 32 * 1024)]
    segment_size: usize,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self::parse_from(["demo"])
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Demo(DemoArgs::default())) {
        Command::Demo(args) => demo(&args),
    }
}

fn demo(args: &DemoArgs) -> ExitCode {
    let mut run = ChannelRun {
        partitioner: Partitioner::Rebalance,
        channels: args.channels,
        records: args.records,
        record_size: args.record_size,
        ..ChannelRun::default()
    };
    run.network.memory.segment_size = args.segment_size;
    if args.channels == 0 {
        eprintln!("error: --channels must be at least 1");
        return ExitCode::from(2);
    }
    match run_channel(&run) {
        Ok(report) => {
            println!(
                "{} records of {} B over {} channel(s), {} KiB segments",
                report.records,
                args.record_size,
                args.channels,
                args.segment_size / 1024
            );
            println!(
                "  time          {:>12.3} ms",
                report.elapsed.as_secs_f64() * 1e3
            );
            println!("  records/s     {:>12.3} M", report.records_per_sec() / 1e6);
            println!(
                "  bytes/s       {:>12.3} MiB",
                report.bytes_per_sec() / (1 << 20) as f64
            );
            let share = |ns: u64| 100.0 * ns as f64 / report.elapsed.as_nanos() as f64;
            println!(
                "  writer waited {:>11.1} % for a buffer, {:.1} % for credit",
                share(report.partition.hard_back_pressured_ns),
                share(report.partition.soft_back_pressured_ns)
            );
            println!(
                "  allocations   {:>12} (during the run)",
                report.allocations.allocations
            );
            println!("  pools full    {:>12}", report.pools_full);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
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
