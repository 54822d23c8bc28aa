//! The benchmark engine. So far: the two-thread channel run behind
//! `taskbench demo` and the partition → gate benchmark.

pub mod channel;
