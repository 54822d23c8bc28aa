//! The consuming side: input gates over input channels, and the signal that
//! tells a gate which channels have data.

mod availability;
mod debloat;
mod input_channel;
mod input_gate;

pub use availability::ChannelAvailability;
pub use debloat::{BufferDebloater, DebloatConfig};
pub use input_channel::{ChannelMetrics, InputChannel, Recycler};
pub use input_gate::{GateError, InputGate, Poll};
