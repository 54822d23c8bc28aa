//! CPU time of the calling thread: how long a task actually had a core,
//! as opposed to how long its loop ran (with more tasks than cores, tasks
//! take turns on a core and the two part).

use std::time::Duration;

/// CPU time the calling thread has used so far (user and system), or
/// `None` where the platform does not say.
pub fn thread_cpu_time() -> Option<Duration> {
    cpu_time::ThreadTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

#[cfg(all(test, unix, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn work_adds_cpu_time_and_sleep_does_not() {
        let before = thread_cpu_time().expect("unix threads have a CPU clock");
        let mut x = 1u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        let worked = thread_cpu_time().unwrap();
        assert!(worked > before, "spinning used CPU time");
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().unwrap();
        assert!(
            slept - worked < Duration::from_millis(25),
            "a sleeping thread uses (almost) no CPU: {:?}",
            slept - worked
        );
        // The other threads' work is not ours.
        std::thread::spawn(|| {
            let mut y = 1u64;
            for i in 0..20_000_000u64 {
                y = std::hint::black_box(y.wrapping_add(i));
            }
        })
        .join()
        .unwrap();
        assert!(thread_cpu_time().unwrap() - slept < Duration::from_millis(25));
    }
}
