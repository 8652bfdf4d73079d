//! `/metrics` in the Prometheus text format, with MetalLB's metric names
//! where MetalLB has one, so existing dashboards and alerts keep working.
//!
//! Written by hand rather than through a metrics registry: MetalLB's names
//! include counters without the `_total` suffix (`metallb_bgp_opens_sent`)
//! and gauges with it (`metallb_bgp_announced_prefixes_total`), which
//! OpenMetrics-strict libraries refuse to produce; and every value is read
//! from live state at scrape time, so there is nothing to register.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use lb_bgp::session::State;

use crate::standalone::View;

/// A metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn family<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Which counter of a peer a metric shows.
type Counter = fn(&crate::bgp::peer::PeerCounters) -> &AtomicU64;

/// The whole exposition.
pub fn render(view: &View) -> String {
    let mut out = String::new();
    let peers: Vec<(String, &crate::bgp::PeerShared)> =
        view.peers.iter().map(|(_, remote, shared)| (remote.to_string(), &**shared)).collect();

    let mut f = family(&mut out, "metallb_bgp_session_up", "gauge", "BGP session state (1 is up, 0 is down)");
    for (peer, shared) in &peers {
        f.sample("metallb_bgp_session_up", &[("peer", peer)], u8::from(shared.status().state == State::Established));
    }
    let mut f = family(
        &mut out,
        "metallb_bgp_announced_prefixes_total",
        "gauge",
        "Number of prefixes currently being advertised on the BGP session",
    );
    for (peer, shared) in &peers {
        let s = shared.status();
        let announced = if s.state == State::Established { s.routes } else { 0 };
        f.sample("metallb_bgp_announced_prefixes_total", &[("peer", peer)], announced);
    }
    let counters: [(&str, &str, Counter); 6] = [
        ("metallb_bgp_updates_total", "Number of BGP UPDATE messages sent", |c| &c.updates_sent),
        ("metallb_bgp_opens_sent", "Number of BGP open messages sent", |c| &c.opens_sent),
        ("metallb_bgp_keepalives_sent", "Number of BGP keepalive messages sent", |c| &c.keepalives_sent),
        ("metallb_bgp_notifications_sent", "Number of BGP notification messages sent", |c| &c.notifications_sent),
        ("metallb_bgp_route_refresh_sent", "Number of BGP route refresh messages sent", |c| &c.route_refreshes_sent),
        ("lb_bgp_sessions_established_total", "Number of times the BGP session reached Established", |c| {
            &c.sessions_established
        }),
    ];
    for (name, help, get) in counters {
        let mut f = family(&mut out, name, "counter", help);
        for (peer, shared) in &peers {
            f.sample(name, &[("peer", peer)], load(get(&shared.counters)));
        }
    }

    let mut f = family(
        &mut out,
        "metallb_allocator_addresses_in_use_total",
        "gauge",
        "Number of IP addresses in use, per pool",
    );
    for p in &view.pools {
        f.sample("metallb_allocator_addresses_in_use_total", &[("pool", &p.name)], p.ipv4_in_use + p.ipv6_in_use);
    }
    let mut f =
        family(&mut out, "metallb_allocator_addresses_total", "gauge", "Number of usable IP addresses, per pool");
    for p in &view.pools {
        f.sample("metallb_allocator_addresses_total", &[("pool", &p.name)], p.ipv4_total.saturating_add(p.ipv6_total));
    }
    let mut f =
        family(&mut out, "metallb_k8s_client_config_loaded_bool", "gauge", "1 if the configuration was ever loaded");
    f.sample("metallb_k8s_client_config_loaded_bool", &[], u8::from(view.config_loaded));
    let mut f = family(
        &mut out,
        "metallb_k8s_client_config_stale_bool",
        "gauge",
        "1 if running on a stale configuration, because the latest change was invalid",
    );
    f.sample("metallb_k8s_client_config_stale_bool", &[], u8::from(view.config_stale));
    let mut f =
        family(&mut out, "metallb_k8s_client_updates_total", "counter", "Number of configuration updates applied");
    f.sample("metallb_k8s_client_updates_total", &[], view.reloads);
    let mut f = family(
        &mut out,
        "metallb_k8s_client_update_errors_total",
        "counter",
        "Number of configuration updates refused",
    );
    f.sample("metallb_k8s_client_update_errors_total", &[], view.reload_errors);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let view = View {
            config_loaded: true,
            pools: vec![lb_ipam::PoolStats {
                name: "a\"b".into(),
                ipv4_total: 16,
                ipv4_in_use: 2,
                ipv6_total: 0,
                ipv6_in_use: 0,
            }],
            ..View::default()
        };
        let text = render(&view);
        assert!(text.contains("metallb_allocator_addresses_in_use_total{pool=\"a\\\"b\"} 2\n"), "{text}");
        assert!(text.contains("# TYPE metallb_bgp_session_up gauge\n"));
        assert!(text.contains("metallb_k8s_client_config_loaded_bool 1\n"));
    }
}
