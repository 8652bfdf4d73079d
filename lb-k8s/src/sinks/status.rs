//! `/status`: what this node does and why, as JSON, from a [`Snapshot`].

use std::time::SystemTime;

use lb_bgp::session::State;

use lb_core::plan::RouteView;

use crate::view::Snapshot;

/// `/status`: allocations, sessions with state and uptime, announced routes.
pub fn render(view: &Snapshot) -> serde_json::Value {
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
        "node": view.node,
        "configLoaded": view.config.loaded,
        "configStale": view.config.stale,
        "lastError": view.config.last_error,
        "allocations": view.allocations,
        "pools": view.pools.iter().map(|p| json!({
            "name": p.name, "ipv4Total": p.ipv4_total, "ipv4InUse": p.ipv4_in_use,
            "ipv6Total": p.ipv6_total, "ipv6InUse": p.ipv6_in_use,
        })).collect::<Vec<_>>(),
        "sessions": sessions,
        "announced": announced,
        "services": services,
    })
}
