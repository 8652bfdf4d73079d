//! The configuration's validation and defaults: a structured description
//! ([`lb_fuzz::ConfigInput`]: pools, advertisements, peers, communities,
//! BFD profiles with names from a tiny alphabet and addresses near the
//! edges) built into typed resources, as the YAML layer delivers them, and
//! through the builder: a `Config` or errors, never a panic.
//!
//! No text is parsed on the way (that is `config_text`'s work, at a
//! twentieth of the speed): nearly every execution reaches the checks.
#![no_main]

use lb_fuzz::ConfigInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: ConfigInput| {
    let _ = input.config();
});
