//! `/metrics`: Prometheus text, with MetalLB's metric names where MetalLB
//! has one, so existing dashboards and alerts keep working.
//!
//! Every metric is one row of [`METRICS`]: name, help, type and how to read
//! its samples from a [`Snapshot`]. `prometheus-client` does the encoding
//! (escaping, HELP and TYPE lines), through a collector that reads the
//! snapshot at scrape time, so there is nothing to register or keep in
//! step with the state.
//!
//! One thing the crate cannot do as it stands: its counters always get a
//! `_total` suffix (OpenMetrics), while MetalLB's BGP message counters have
//! none (`metallb_bgp_opens_sent`). Those families are declared as counters
//! and their samples written with the crate's plain (gauge) sample writer,
//! which adds no suffix: the output is MetalLB's, `# TYPE … counter`
//! included. The body is served as the Prometheus text format 0.0.4, so the
//! OpenMetrics `# EOF` trailer is left off.

use std::sync::Arc;

use lb_bgp::session::State;
use lb_bgp::stats::SessionStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::view::Snapshot;

/// The content type `/metrics` is served with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a family is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    /// Only grows; the name is MetalLB's, suffix or not.
    Counter,
}

/// Samples of one family: label pairs and value.
type Samples = Vec<(Vec<(&'static str, String)>, u64)>;

/// One metric family.
struct Metric {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    read: fn(&Snapshot) -> Samples,
}

fn per_peer(s: &Snapshot, value: impl Fn(&crate::view::PeerShared) -> u64) -> Samples {
    s.sessions.iter().map(|p| (vec![("peer", p.status().remote.to_string())], value(p))).collect()
}

fn counter(s: &Snapshot, get: fn(&SessionStats) -> u64) -> Samples {
    per_peer(s, |p| get(&p.status().stats))
}

fn per_pool(s: &Snapshot, value: impl Fn(&lb_ipam::PoolStats) -> u128) -> Samples {
    // Capped as in `lb plan -o json`: Prometheus holds doubles, exact up to 2^53.
    s.pools.iter().map(|p| (vec![("pool", p.name.clone())], lb_core::plan::json_count(value(p)))).collect()
}

fn per_l2_ip(s: &Snapshot, value: fn(&lb_arp::Counters) -> u64) -> Samples {
    let Some(l2) = &s.layer2 else { return Vec::new() };
    l2.status()
        .ips
        .iter()
        .filter(|ip| ip.owner.is_some())
        .map(|ip| (vec![("ip", ip.ip.to_string())], value(&ip.counters)))
        .collect()
}

fn l2_members(s: &Snapshot, state: &str) -> Samples {
    let Some(l2) = &s.layer2 else { return Vec::new() };
    single(l2.status().members.iter().filter(|m| m.state == state).count() as u64)
}

fn l2_gossip(s: &Snapshot, value: fn(&lb_arp::membership::MembershipStats) -> u64) -> Samples {
    let Some(l2) = &s.layer2 else { return Vec::new() };
    single(value(&l2.status().gossip))
}

fn single(value: impl Into<u64>) -> Samples {
    vec![(Vec::new(), value.into())]
}

/// Every metric `lb` exposes.
const METRICS: &[Metric] = &[
    Metric {
        name: "metallb_bgp_session_up",
        help: "BGP session state (1 is up, 0 is down)",
        kind: Kind::Gauge,
        read: |s| per_peer(s, |p| u64::from(p.status().state == State::Established)),
    },
    Metric {
        name: "metallb_bgp_announced_prefixes_total",
        help: "Number of prefixes currently being advertised on the BGP session",
        kind: Kind::Gauge,
        read: |s| {
            per_peer(s, |p| {
                let status = p.status();
                if status.state == State::Established { status.routes as u64 } else { 0 }
            })
        },
    },
    Metric {
        name: "metallb_bgp_updates_total",
        help: "Number of BGP UPDATE messages sent",
        kind: Kind::Counter,
        read: |s| counter(s, |c| c.sent.update),
    },
    Metric {
        name: "metallb_bgp_opens_sent",
        help: "Number of BGP open messages sent",
        kind: Kind::Counter,
        read: |s| counter(s, |c| c.sent.open),
    },
    Metric {
        name: "metallb_bgp_keepalives_sent",
        help: "Number of BGP keepalive messages sent",
        kind: Kind::Counter,
        read: |s| counter(s, |c| c.sent.keepalive),
    },
    Metric {
        name: "metallb_bgp_notifications_sent",
        help: "Number of BGP notification messages sent",
        kind: Kind::Counter,
        read: |s| counter(s, |c| c.sent.notification),
    },
    Metric {
        name: "metallb_bgp_route_refresh_sent",
        help: "Number of BGP route refresh messages sent",
        kind: Kind::Counter,
        read: |s| counter(s, |c| c.sent.route_refresh),
    },
    Metric {
        name: "lb_bgp_sessions_established_total",
        help: "Number of times the BGP session reached Established",
        kind: Kind::Counter,
        read: |s| counter(s, |c| c.times_established),
    },
    Metric {
        name: "metallb_allocator_addresses_in_use_total",
        help: "Number of IP addresses in use, per pool",
        kind: Kind::Gauge,
        read: |s| per_pool(s, |p| p.ipv4_in_use.saturating_add(p.ipv6_in_use)),
    },
    Metric {
        name: "metallb_allocator_addresses_total",
        help: "Number of usable IP addresses, per pool",
        kind: Kind::Gauge,
        read: |s| per_pool(s, |p| p.ipv4_total.saturating_add(p.ipv6_total)),
    },
    Metric {
        name: "metallb_layer2_requests_received",
        help: "Number of layer2 requests received for owned IPs",
        kind: Kind::Counter,
        read: |s| per_l2_ip(s, |c| c.requests_received),
    },
    Metric {
        name: "metallb_layer2_responses_sent",
        help: "Number of layer2 responses sent for owned IPs",
        kind: Kind::Counter,
        read: |s| per_l2_ip(s, |c| c.responses_sent),
    },
    Metric {
        name: "metallb_layer2_gratuitous_sent",
        help: "Number of gratuitous layer2 packets sent for owned IPs",
        kind: Kind::Counter,
        read: |s| per_l2_ip(s, |c| c.gratuitous_sent),
    },
    Metric {
        name: "lb_layer2_ip_conflicts_total",
        help: "Number of times another host was seen answering for an owned IP",
        kind: Kind::Counter,
        read: |s| per_l2_ip(s, |c| c.conflicts),
    },
    Metric {
        name: "lb_memberlist_members_alive",
        help: "Layer 2 gossip members alive, as this node sees them",
        kind: Kind::Gauge,
        read: |s| l2_members(s, "alive"),
    },
    Metric {
        name: "lb_memberlist_members_suspect",
        help: "Layer 2 gossip members suspected of being down",
        kind: Kind::Gauge,
        read: |s| l2_members(s, "suspect"),
    },
    Metric {
        name: "lb_memberlist_members_down",
        help: "Layer 2 gossip members declared down",
        kind: Kind::Gauge,
        read: |s| l2_members(s, "down"),
    },
    Metric {
        name: "lb_memberlist_unauthenticated_total",
        help: "Gossip datagrams dropped for a missing or wrong authentication tag",
        kind: Kind::Counter,
        read: |s| l2_gossip(s, |g| g.unauthenticated),
    },
    Metric {
        name: "lb_memberlist_local_health_score",
        help: "Local health (0 is healthy; while above 0 this node waits longer before declaring others down)",
        kind: Kind::Gauge,
        read: |s| l2_gossip(s, |g| u64::from(g.health_score)),
    },
    Metric {
        name: "metallb_k8s_client_config_loaded_bool",
        help: "1 if the configuration was ever loaded",
        kind: Kind::Gauge,
        read: |s| single(s.config.loaded),
    },
    Metric {
        name: "metallb_k8s_client_config_stale_bool",
        help: "1 if running on a stale configuration, because the latest change was invalid",
        kind: Kind::Gauge,
        read: |s| single(s.config.stale),
    },
    Metric {
        name: "metallb_k8s_client_updates_total",
        help: "Number of configuration updates applied",
        kind: Kind::Counter,
        read: |s| single(s.config.reloads),
    },
    Metric {
        name: "metallb_k8s_client_update_errors_total",
        help: "Number of configuration updates refused",
        kind: Kind::Counter,
        read: |s| single(s.config.reload_errors),
    },
];

/// The metrics of one snapshot, read at scrape time.
#[derive(Debug)]
struct Exposition(Arc<Snapshot>);

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for metric in METRICS {
            let kind = match metric.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Counter,
            };
            // prometheus-client takes the name without a `_total` it adds
            // itself; the samples below are written with no suffix, so the
            // descriptor gets the full name.
            let mut family = encoder.encode_descriptor(metric.name, metric.help, None, kind)?;
            let gauge = |value: u64| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            match (metric.read)(&self.0).as_slice() {
                // A family without labels has one sample, written bare.
                [(labels, value)] if labels.is_empty() => gauge(*value).encode(family)?,
                samples => {
                    for (labels, value) in samples {
                        gauge(*value).encode(family.encode_family(labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The whole exposition.
pub fn render(snapshot: Arc<Snapshot>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(snapshot)));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::ConfigState;

    #[test]
    fn metallb_names_and_types() {
        let snapshot = Snapshot {
            config: ConfigState { loaded: true, reloads: 3, ..ConfigState::default() },
            pools: vec![lb_ipam::PoolStats {
                name: "a\"b".into(),
                ipv4_total: 16,
                ipv4_in_use: 2,
                ipv6_total: 0,
                ipv6_in_use: 0,
            }],
            ..Snapshot::default()
        };
        let text = render(Arc::new(snapshot));
        assert!(text.contains("metallb_allocator_addresses_in_use_total{pool=\"a\\\"b\"} 2\n"), "{text}");
        assert!(text.contains("# TYPE metallb_bgp_session_up gauge\n"), "{text}");
        assert!(text.contains("# TYPE metallb_bgp_opens_sent counter\n"), "{text}");
        assert!(text.contains("metallb_k8s_client_config_loaded_bool 1\n"), "{text}");
        assert!(text.contains("metallb_k8s_client_updates_total 3\n"), "{text}");
        assert!(!text.contains("_total_total") && !text.contains("# EOF"), "{text}");
        // All of IPv6: capped where Prometheus (a double) is still exact.
        let whole = Snapshot {
            pools: vec![lb_ipam::PoolStats {
                name: "all".into(),
                ipv4_total: 0,
                ipv4_in_use: 0,
                ipv6_total: u128::MAX,
                ipv6_in_use: 1,
            }],
            ..Snapshot::default()
        };
        let text = render(Arc::new(whole));
        assert!(text.contains("metallb_allocator_addresses_total{pool=\"all\"} 9007199254740991\n"), "{text}");
        // Every family once, in the table's order.
        let families: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap_or("")).collect();
        let names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(families, names);
    }
}
