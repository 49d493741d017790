//! The host functions a plugin imports (`host`, `output`, `frames`, and the outbound-HTTP grant
//! check), called with arbitrary arguments in an arbitrary order on a real host state with an
//! arbitrary grant. `byoc_runtime::fuzzing` checks after every call that the output cap holds,
//! output is well formed, frames stay within the memory grant and are counted exactly, config,
//! secrets and outbound hosts answer only as granted, and no handle panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|script: byoc_runtime::fuzzing::Script| byoc_runtime::fuzzing::run(script));
