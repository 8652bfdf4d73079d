//! Allocation cost: our allocator, MetalLB's scan-from-the-start, and a bare
//! `HashSet::insert` of the same addresses (the least any allocator must
//! do), side by side in one run so ratios survive a noisy machine.
//!
//! - `fill_slash16`: allocate Services one by one until a /16 is full
//!   (per-element throughput is the mean cost of one allocation);
//! - `one_at_occupancy/N`: allocate one Service (and release it again) in a
//!   /16 already N % full.

use std::collections::HashSet;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lb_benches::{NaiveScan, config, services};
use lb_core::addr::AddressBlock;
use lb_ipam::Allocator;

const POOL: &str = "10.0.0.0/16";
const SIZE: usize = 1 << 16;

fn block() -> AddressBlock {
    POOL.parse().expect("pool")
}

fn addresses() -> Vec<IpAddr> {
    let b = block();
    (0..SIZE as u128).filter_map(|i| b.nth(i)).collect()
}

fn fill(c: &mut Criterion) {
    let svcs = services(SIZE);
    let ips = addresses();
    let mut group = c.benchmark_group("fill_slash16");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(SIZE as u64));
    group.bench_function("ours", |b| {
        b.iter_batched(
            || Allocator::new(config(POOL)),
            |mut a| {
                for s in &svcs {
                    black_box(a.allocate(s).ok());
                }
                a
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("bare_hashset_insert", |b| {
        b.iter_batched(
            HashSet::new,
            |mut set| {
                for ip in &ips {
                    black_box(set.insert(*ip));
                }
                set
            },
            BatchSize::LargeInput,
        )
    });
    if std::env::var_os("LB_BENCH_NAIVE_FILL").is_some() {
        // About n²/2 probes: tens of seconds per fill, so only on request.
        group.bench_function("naive_scan", |b| {
            b.iter_batched(
                || NaiveScan::new(vec![block()]),
                |mut n| {
                    for s in &svcs {
                        black_box(n.allocate(&s.key));
                    }
                    n
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn at_occupancy(c: &mut Criterion) {
    let svcs = services(SIZE);
    let ips = addresses();
    let extra = &svcs[SIZE - 1];
    let mut group = c.benchmark_group("one_at_occupancy");
    group.measurement_time(Duration::from_secs(3));
    for percent in [0usize, 50, 90, 99] {
        // Criterion calls each closure many times (warm-up, every sample):
        // the filled state is built on the first call only, and only if the
        // benchmark is selected.
        let filled = SIZE * percent / 100;
        let next = ips[filled];
        let mut ours = None;
        group.bench_with_input(BenchmarkId::new("ours", percent), &percent, |b, _| {
            let ours = ours.get_or_insert_with(|| {
                let mut a = Allocator::new(config(POOL));
                for s in &svcs[..filled] {
                    a.allocate(s).expect("fill");
                }
                a
            });
            b.iter(|| {
                let got = ours.allocate(extra).ok().flatten().map(|a| a.addresses);
                ours.release(&extra.key);
                got
            })
        });
        let mut naive = None;
        group.bench_with_input(BenchmarkId::new("naive_scan", percent), &percent, |b, _| {
            let naive = naive.get_or_insert_with(|| {
                let keys: Vec<_> = svcs[..filled].iter().map(|s| s.key.clone()).collect();
                NaiveScan::filled(vec![block()], &keys)
            });
            b.iter(|| {
                let ip = naive.allocate(&extra.key).expect("free address");
                naive.release(ip);
                ip
            })
        });
        let mut bare = None;
        group.bench_with_input(BenchmarkId::new("bare_hashset_insert", percent), &percent, |b, _| {
            let bare: &mut HashSet<IpAddr> = bare.get_or_insert_with(|| ips[..filled].iter().copied().collect());
            b.iter(|| {
                let inserted = bare.insert(black_box(next));
                bare.remove(&next);
                inserted
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fill, at_occupancy);
criterion_main!(benches);
