//! Arbitrary Service manifests against a fixed configuration: allocation
//! results or errors, never a panic. The input is split at the first NUL
//! into configuration and Services so both halves get mutated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (config_text, services_text) = text.split_once('\0').unwrap_or(("", &text));
    let Ok(loaded) = lb_core::config::load(&[("config.yaml", config_text)]) else { return };
    let Ok(services) = lb_core::manifest::services(services_text) else { return };
    let mut allocator = lb_ipam::Allocator::new(loaded.config);
    let _ = allocator.allocate_all(&services);
    let _ = allocator.pool_stats();
});
