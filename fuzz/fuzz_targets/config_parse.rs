//! Arbitrary bytes as configuration YAML: an error or a Config, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = lb_core::config::load(&[("fuzz.yaml", &text)]);
});
