//! What a thousand channels cost: the network-throughput profiles' shape
//! (4 writers, 1.25 M 8-byte records each, round-robin over 100 or 1000
//! channels into 32 KiB segments, one receiver) run through the runtime,
//! next to its memory floor measured in the same run.
//!
//! The floor is the writers' bare write pattern with no runtime around it:
//! four threads, pinned as the job's writers are, each framing its records
//! (a 4-byte length and the value) round-robin into one open segment per
//! channel, taking the next of its pool's segments when one fills and
//! prefetching each segment's next line as the runtime does. No rings, no
//! receiver, no pools to share: what is left is the stores and the memory
//! they land in.
//!
//! At 100 channels a writer's segments are reused within a job and its
//! pool (208 segments) stays in the last-level cache; at 1000 channels each
//! channel's segment (15 KB of a job's records) is written once, so a job
//! writes its 60 MB into lines that come from DRAM. The ratio of the two
//! floors is what the memory system lets the writers' stores keep of their
//! 100-channel speed on this machine; the runtime's receiver then reads
//! those 60 MB back, which the floor leaves out.
//!
//! Every sample is one job, timed twice: by the wall clock over its data
//! window (`…/wall`), and by the core time its threads used (`…/cpu`, the
//! sum of their CPU time; "throughput" is then records per core-second).
//! Core time does not move when the scheduler leaves a core idle or gives
//! one writer a core to itself; on a shared VM it still moves with the
//! neighbours' memory traffic, so compare the four figures of one run.

use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memmap2::MmapMut;
use taskbench::bench::Profile;
use taskbench::job::{run_job_on, JobResult};
use taskbench::metrics::thread_cpu_time;
use taskbench::network::ShuffleEnvironment;

const WRITERS: usize = 4;
/// The profiles' `records.count` (checked when they load).
const RECORDS_PER_WRITER: u64 = 1_250_000;
const SEGMENT: usize = 32 << 10;
/// Segments sit one cache line apart more than their size, as in the
/// runtime's network memory.
const STRIDE: usize = SEGMENT + 64;
const FRAME: usize = 12;

/// One writer's network memory: `2 * channels + 8` segments, as the
/// runtime's default pool bounds give a writer.
struct Memory {
    map: MmapMut,
    segments: usize,
}

impl Memory {
    fn new(channels: usize) -> Self {
        let segments = 2 * channels + 8;
        let mut map = MmapMut::map_anon(segments * STRIDE).expect("map segments");
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        map.fill(0);
        Self { map, segments }
    }
}

/// Writes one job's records round-robin over `channels` open segments.
fn write_pattern(memory: &mut Memory, channels: usize, first: u64) -> u64 {
    let base = memory.map.as_mut_ptr();
    let mut next_segment = 0;
    let mut take = || {
        let offset = next_segment * STRIDE;
        next_segment = (next_segment + 1) % memory.segments;
        offset
    };
    // (segment offset, bytes written) per channel.
    let mut open: Vec<(usize, usize)> = (0..channels).map(|_| (take(), 0)).collect();
    let mut channel = 0;
    let mut full = 0;
    for i in 0..RECORDS_PER_WRITER {
        let (segment, len) = &mut open[channel];
        if SEGMENT - *len <= FRAME {
            *segment = take();
            *len = 0;
            full += 1;
        }
        let at = *segment + *len;
        // SAFETY: `at + FRAME < segment + SEGMENT`, inside the map, which this thread alone writes.
        unsafe {
            base.add(at).cast::<u32>().write_unaligned(8);
            base.add(at + 4)
                .cast::<u64>()
                .write_unaligned(first + i * WRITERS as u64);
        }
        *len += FRAME;
        if *len + 64 < SEGMENT {
            prefetch_for_write(base.wrapping_add(*segment + *len + 64));
        }
        channel += 1;
        if channel == channels {
            channel = 0;
        }
    }
    full
}

#[inline(always)]
fn prefetch_for_write(line: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults; SSE is part of x86-64's baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
        _mm_prefetch::<_MM_HINT_ET0>(line.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = line;
}

/// The four writers' memory, kept across jobs as network memory is.
struct Floor {
    channels: usize,
    memory: Vec<Memory>,
}

impl Floor {
    fn new(channels: usize) -> Self {
        Self {
            channels,
            memory: (0..WRITERS).map(|_| Memory::new(channels)).collect(),
        }
    }

    /// One job: all writers start together. Returns the time from the
    /// first writer's start to the last one's end, each read on the writer's
    /// own thread (the spawning thread may not get a core when they start
    /// or end), and the CPU time the writers used.
    fn job(&mut self) -> (Duration, Duration) {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let start = Barrier::new(WRITERS);
        let channels = self.channels;
        std::thread::scope(|scope| {
            let writers: Vec<_> = self
                .memory
                .iter_mut()
                .enumerate()
                .map(|(index, memory)| {
                    let (start, core) = (&start, cores.get(index % cores.len().max(1)));
                    scope.spawn(move || {
                        if let Some(&core) = core {
                            core_affinity::set_for_current(core);
                        }
                        start.wait();
                        let (began, before) = (Instant::now(), thread_cpu_time().unwrap());
                        let filled = write_pattern(memory, channels, index as u64);
                        let used = thread_cpu_time().unwrap() - before;
                        (filled, began, Instant::now(), used)
                    })
                })
                .collect();
            // Each channel's records fill `(SEGMENT - 1) / FRAME` to a segment.
            let per_channel = RECORDS_PER_WRITER / channels as u64;
            let filled = channels as u64 * ((per_channel - 1) / ((SEGMENT - 1) / FRAME) as u64);
            let ends: Vec<_> = writers
                .into_iter()
                .map(|writer| writer.join().expect("writer"))
                .collect();
            for &(full, ..) in &ends {
                assert_eq!(full, filled);
            }
            let first = ends.iter().map(|e| e.1).min().expect("writers");
            let last = ends.iter().map(|e| e.2).max().expect("writers");
            (last - first, ends.iter().map(|e| e.3).sum())
        })
    }
}

fn profile(channels: usize) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "profiles/network-throughput-{channels}ch-100ms.toml"
    ));
    let profile = Profile::from_file(&path, &[]).expect("the profile loads");
    assert_eq!(
        profile.records.count,
        Some(RECORDS_PER_WRITER),
        "the floor writes what the profile's writers write"
    );
    profile
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(RECORDS_PER_WRITER * WRITERS as u64));
    for channels in [100, 1000] {
        let profile = profile(channels);
        let graph = profile.job_graph().expect("graph");
        let options = profile.job_options().expect("options");
        let shuffle =
            std::sync::Arc::new(ShuffleEnvironment::new(options.network).expect("memory"));
        let run = || -> JobResult {
            let result = run_job_on(&graph, &options, &shuffle).expect("job runs");
            assert!(result.is_finished(), "{:?}", result.failure);
            let n = RECORDS_PER_WRITER * WRITERS as u64;
            assert_eq!(result.sink_totals().0, n);
            result
        };
        let core_time = |result: &JobResult| {
            result
                .subtasks
                .iter()
                .map(|s| s.loop_cpu.expect("a thread CPU clock"))
                .sum::<Duration>()
        };
        group.bench_function(BenchmarkId::new("runtime/wall", channels), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| run().data_window().expect("a data window"))
                    .sum()
            })
        });
        group.bench_function(BenchmarkId::new("runtime/cpu", channels), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| core_time(&run())).sum())
        });
        let mut floor = Floor::new(channels);
        group.bench_function(BenchmarkId::new("memory-floor/wall", channels), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| floor.job().0).sum())
        });
        group.bench_function(BenchmarkId::new("memory-floor/cpu", channels), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| floor.job().1).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
