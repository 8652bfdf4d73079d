//! A fixed workload for instruction counting (`valgrind --tool=callgrind`),
//! which is exact where wall-clock benches are noisy: fill a /16 to 90 %,
//! then allocate and release one more Service `CYCLES` times; with `bare`,
//! the same with a `HashSet` of addresses.

use std::collections::HashSet;
use std::hint::black_box;
use std::net::IpAddr;

use lb_benches::{config, services};
use lb_core::addr::AddressBlock;
use lb_ipam::Allocator;

const CYCLES: usize = 100_000;

fn cycles() -> usize {
    std::env::var("CYCLES").ok().and_then(|c| c.parse().ok()).unwrap_or(CYCLES)
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let size = 1usize << 16;
    let filled = size * 9 / 10;
    let svcs = services(filled + 1);
    match mode.as_str() {
        "bare" => {
            let block: AddressBlock = "10.0.0.0/16".parse().expect("block");
            let mut set: HashSet<IpAddr> = (0..filled as u128).filter_map(|i| block.nth(i)).collect();
            let next = block.nth(filled as u128).expect("address");
            for _ in 0..cycles() {
                black_box(set.insert(black_box(next)));
                set.remove(&next);
            }
        }
        _ => {
            let mut a = Allocator::new(config("10.0.0.0/16"));
            for s in &svcs[..filled] {
                a.allocate(s).expect("fill");
            }
            let extra = &svcs[filled];
            for _ in 0..cycles() {
                black_box(a.allocate(extra).ok().flatten().map(|x| x.addresses));
                a.release(&extra.key);
            }
        }
    }
}
