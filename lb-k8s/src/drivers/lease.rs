//! Leader election: the Lease protocol of `lb_core::lease` carried out on
//! kube's `Api<Lease>`, every write an update with the read
//! `resourceVersion` (optimistic concurrency), so of two candidates only
//! one can take the Lease.

use std::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use lb_core::lease::{Elector, LeaseRecord, LeaseTiming, Step};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::view::error_chain;

fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity,
        renew_time: spec.renew_time.map(|t| t.0.to_string()),
        duration_seconds: spec.lease_duration_seconds.and_then(|d| u32::try_from(d).ok()),
        transitions: spec.lease_transitions.and_then(|t| u32::try_from(t).ok()).unwrap_or(0),
    }
}

/// Runs the election for `identity` on Lease `namespace/name` until
/// `leader` has no receiver left; `leader` says at every moment whether
/// this process may write.
pub async fn run(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
    timing: LeaseTiming,
    leader: watch::Sender<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let mut elector = Elector::new(identity, timing);
    loop {
        if leader.is_closed() {
            return;
        }
        let sent = Instant::now();
        let current = match api.get_opt(name).await {
            Ok(l) => l,
            Err(e) => {
                warn!(event = "leaseUnreadable", error = %error_chain(&e), "cannot read the leader Lease");
                None
            }
        };
        let step = elector.step(current.as_ref().map(record_of).as_ref(), sent);
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let duration = i32::try_from(timing.duration.as_secs()).unwrap_or(i32::MAX);
        let written = match (&step, &current) {
            (Step::Wait, _) => None,
            (Step::Acquire { .. }, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        namespace: Some(namespace.into()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(identity.into()),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_duration_seconds: Some(duration),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                Some(api.create(&PostParams::default(), &lease).await)
            }
            (Step::Acquire { .. } | Step::Renew, Some(old)) => {
                let mut lease = old.clone();
                let spec = lease.spec.get_or_insert_with(Default::default);
                if let Step::Acquire { transitions } = &step {
                    spec.holder_identity = Some(identity.into());
                    spec.acquire_time = Some(now.clone());
                    spec.lease_transitions = Some(i32::try_from(*transitions).unwrap_or(i32::MAX));
                }
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(duration);
                // The read resourceVersion stays: a concurrent writer makes this a 409.
                Some(api.replace(name, &PostParams::default(), &lease).await)
            }
            (Step::Renew, None) => None,
        };
        match written {
            Some(Ok(_)) => {
                if !*leader.borrow() {
                    info!(event = "leaderElected", identity, "this instance leads: it writes from now on");
                }
                elector.wrote(sent);
            }
            Some(Err(e)) => {
                tracing::debug!(error = %error_chain(&e), "lease write refused");
                elector.lost();
            }
            None => {
                if matches!(step, Step::Wait) {
                    elector.lost();
                }
            }
        }
        let was = *leader.borrow();
        let is = elector.is_leader(Instant::now());
        if was != is {
            if !is {
                warn!(event = "leaderLost", identity, "no longer leading: writes stop");
            }
            leader.send_replace(is);
        }
        // Wake up to renew, or when leadership would lapse, whichever is first.
        let next = Instant::now() + timing.renew_every;
        let next = elector.leader_until().filter(|u| *u < next && is).unwrap_or(next);
        tokio::time::sleep_until(next.into()).await;
        if *leader.borrow() && !elector.is_leader(Instant::now()) {
            warn!(event = "leaderLost", identity, "the Lease could not be renewed in time: writes stop");
            leader.send_replace(false);
        }
    }
}
