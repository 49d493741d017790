//! The BYOC nodes: the orchestrator (capabilities, signed jobs, streams on trickle) and, later,
//! the gateway (discovery, signed jobs, stream legs as HTTP trickle and SSE). Built on `byoc-trickle` and `byoc-payment`.

mod capacity;
pub mod gateway;
pub mod orchestrator;
mod registry;
pub mod telemetry;

pub use capacity::{Capacity, CapacityError, Reservation};
pub use registry::{Capability, Price, Registry, WorkerRegistration};
