//! `taskbench demo`: the raw data path, two threads, no task runtime.

use bytesize::ByteSize;
use taskbench::bench::channel::{run_channel, ChannelRun, ChannelRunError};
use taskbench::bench::profile::MAX_SPILL;
use taskbench::memory::BufferPool;
use taskbench::network::Partitioner;

/// The most network memory `demo` maps (and faults in) for its channels.
const MAX_DEMO_MEMORY: u64 = 4 << 30;

use super::term::print;
use super::{CliError, DemoArgs};

pub fn demo(args: &DemoArgs) -> Result<(), CliError> {
    // Every flag is range-checked by clap; what they need together is
    // checked here, before any memory is set aside.
    let spill = u64::from(args.channels).saturating_mul(args.record_size);
    if spill > MAX_SPILL {
        return Err(CliError::Usage(format!(
            "--channels {} with --record-size {} need {} of spill buffers; at most {}",
            args.channels,
            args.record_size,
            ByteSize::b(spill).display().iec(),
            ByteSize::b(MAX_SPILL).display().iec()
        )));
    }
    let mut run = ChannelRun {
        partitioner: Partitioner::Rebalance,
        channels: args.channels as usize,
        records: args.records,
        record_size: args.record_size as usize,
        ..ChannelRun::default()
    };
    run.network.memory.segment_size = args.segment_size as usize;
    // As many segments as the writer's pool needs for its channels (at
    // least the default count): `--channels` up to its limit runs.
    let (needed, _) = BufferPool::default_bounds(args.channels);
    let total = needed.max(run.network.memory.total_segments);
    let memory = u64::from(total) * args.segment_size;
    if memory > MAX_DEMO_MEMORY {
        return Err(CliError::Usage(format!(
            "--channels {} with --segment-size {} need {} of network memory; at most {}: use fewer channels or smaller segments",
            args.channels,
            args.segment_size,
            ByteSize::b(memory).display().iec(),
            ByteSize::b(MAX_DEMO_MEMORY).display().iec()
        )));
    }
    run.network.memory.total_segments = total;
    run.network.max_record_size = run.network.max_record_size.max(run.record_size);
    let report = run_channel(&run).map_err(|e| match e {
        ChannelRunError::Failed(why) => CliError::Failed(why),
        e => CliError::Usage(e.to_string()),
    })?;
    let share = |ns: u64| 100.0 * ns as f64 / report.elapsed.as_nanos().max(1) as f64;
    print(&format!(
        "{} records of {} B over {} channel(s), {} segments
  time          {:>12.3} ms
  records/s     {:>12.3} M
  bytes/s       {:>12}/s
  writer waited {:>11.1} % for a buffer or credit ({} waits)
  allocations   {:>12} (during the run)
  pools full    {:>12}
",
        report.records,
        args.record_size,
        args.channels,
        ByteSize::b(args.segment_size).display().iec(),
        report.elapsed.as_secs_f64() * 1e3,
        report.records_per_sec() / 1e6,
        ByteSize::b(report.bytes_per_sec() as u64)
            .display()
            .iec()
            .to_string(),
        share(report.partition.hard_back_pressured_ns),
        report.partition.hard_back_pressure_waits,
        report.allocations.allocations,
        report.pools_full
    ))
}
