//! `/status`: what this node does and why, as JSON, from a [`Snapshot`].
//!
//! The large part (allocations, pools, routes, per-address reasons) only
//! changes with the snapshot: it is serialised once per snapshot and kept
//! in it, so a thousand readers of a 10,000-Service `/status` cost one
//! rendering, not a thousand. The sessions are live and rendered per read.

use std::time::SystemTime;

use lb_bgp::session::State;

use lb_core::plan::RouteView;

use crate::view::Snapshot;

/// `/status` as JSON text: allocations, sessions with state and uptime,
/// announced routes.
pub fn render_text(view: &Snapshot) -> String {
    let fixed = view.status_fixed.get_or_init(|| {
        let mut text = serde_json::to_string(&fixed_part(view)).unwrap_or_else(|_| "{}".into());
        // The object's fields, to be spliced after the live ones.
        text.remove(0);
        text.pop();
        text
    });
    let live = serde_json::to_string(&live_part(view)).unwrap_or_else(|_| "{}".into());
    let live = live.strip_suffix('}').unwrap_or(&live);
    if fixed.is_empty() { format!("{live}}}") } else { format!("{live},{fixed}}}") }
}

/// `/status` as a JSON value (tests, embedders).
pub fn render(view: &Snapshot) -> serde_json::Value {
    serde_json::from_str(&render_text(view)).unwrap_or_default()
}

/// What changes between snapshots only.
fn live_part(view: &Snapshot) -> serde_json::Value {
    use serde_json::json;
    let now = SystemTime::now();
    let sessions: Vec<serde_json::Value> = view
        .sessions
        .iter()
        .map(|shared| {
            let s = shared.status();
            json!({
                "peer": s.name,
                "address": s.remote.to_string(),
                "state": format!("{:?}", s.state),
                "established": s.state == State::Established,
                "uptimeSeconds": s.established_at.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs_f64()),
                "localAddress": s.local.map(|l| l.to_string()),
                "peerASN": s.peer_asn,
                "routes": s.routes,
                "updatesSent": s.stats.sent.update,
                "messagesSent": s.stats.sent.total(),
                "messagesReceived": s.stats.received.total(),
                "connects": s.connects,
                "lastError": s.last_error,
                "consecutiveFailures": s.consecutive_failures,
            })
        })
        .collect();
    json!({
        "node": view.node,
        "configLoaded": view.config.loaded,
        "configStale": view.config.stale,
        "lastError": view.config.last_error,
        "sessions": sessions,
        "layer2": view.layer2.as_ref().map(|l2| layer2(&l2.status())),
    })
}

/// Layer 2: per IP its owner, the claimants seen and where it is answered;
/// the members and how many IPs each owns.
fn layer2(l2: &crate::view::L2Status) -> serde_json::Value {
    use serde_json::json;
    let ips: Vec<serde_json::Value> = l2
        .ips
        .iter()
        .map(|ip| {
            json!({
                "ip": ip.ip.to_string(),
                "service": ip.service,
                "owner": ip.owner,
                "claimants": ip.claimants,
                "interfaces": ip.interfaces,
                "requestsReceived": ip.counters.requests_received,
                "responsesSent": ip.counters.responses_sent,
                "gratuitousSent": ip.counters.gratuitous_sent,
                "conflicts": ip.counters.conflicts,
            })
        })
        .collect();
    let members: Vec<serde_json::Value> = l2
        .members
        .iter()
        .map(|m| json!({"name": m.name, "address": m.addr.to_string(), "state": m.state, "incarnation": m.incarnation}))
        .collect();
    json!({
        "gossiping": l2.gossiping,
        "ready": l2.ready,
        "interfaces": l2.interfaces,
        "ips": ips,
        "ownedPerNode": l2.owned_per_node,
        "members": members,
        "gossip": {
            "datagramsReceived": l2.gossip.datagrams_received,
            "datagramsSent": l2.gossip.datagrams_sent,
            "unauthenticated": l2.gossip.unauthenticated,
            "malformed": l2.gossip.malformed,
            "localHealthScore": l2.gossip.health_score,
        },
        "ipConflicts": l2.ip_conflicts,
    })
}

/// What only changes with the snapshot.
fn fixed_part(view: &Snapshot) -> serde_json::Value {
    use serde_json::json;
    let announced: Vec<serde_json::Value> = view
        .plan
        .iter()
        .flat_map(|p| &p.bgp)
        .map(|p| {
            json!({
                "peer": p.peer,
                "address": p.address.map(|a| a.to_string()),
                "routes": RouteView::of(p),
            })
        })
        .collect();
    let services: Vec<serde_json::Value> = view
        .plan
        .iter()
        .flat_map(|p| &p.services)
        .map(|s| {
            json!({
                "service": s.service.to_string(),
                "ip": s.ip.to_string(),
                "announced": s.result.is_ok(),
                "reason": s.result.err().map(|r| r.to_string()),
            })
        })
        .collect();
    json!({
        "allocations": view.allocations,
        // One serialisation for lb plan and /status: counts capped where
        // JSON readers stay exact.
        "pools": view.pools,
        "announced": announced,
        "services": services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::ConfigState;

    #[test]
    fn live_and_fixed_parts_make_one_object_and_the_fixed_one_is_rendered_once() {
        let view = Snapshot {
            node: "n1".into(),
            config: ConfigState { loaded: true, ..ConfigState::default() },
            ..Snapshot::default()
        };
        let first = render(&view);
        for key in ["node", "configLoaded", "sessions", "allocations", "pools", "announced", "services"] {
            assert!(first.get(key).is_some(), "{key} in {first}");
        }
        assert_eq!(first["node"], "n1");
        // The fixed part is kept with the snapshot and reused.
        let kept = view.status_fixed.get().cloned().unwrap_or_default();
        assert!(kept.contains("\"allocations\":[]"), "{kept}");
        assert_eq!(render(&view), first);
    }
}
