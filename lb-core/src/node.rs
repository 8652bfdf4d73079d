//! The parts of a Kubernetes Node that announcement depends on.

use std::net::IpAddr;

use crate::selector::Labels;

/// Nodes with this label take no part in external load balancing (KEP 1143);
/// MetalLB honours it on both the layer 2 and the BGP side.
pub const EXCLUDE_FROM_LOAD_BALANCERS: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// A Node as the speaker sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub name: String,
    pub labels: Labels,
    /// The `NetworkUnavailable` condition is `True`: the node's network is
    /// not set up, so traffic sent to it would be lost.
    pub network_unavailable: bool,
    /// `status.addresses`, in order, with their type (`InternalIP`, ...).
    pub addresses: Vec<NodeAddress>,
}

/// One `status.addresses` entry that is an IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    pub kind: String,
    pub address: IpAddr,
}

/// Why a node announces nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum NodeExclusion {
    /// Labelled `node.kubernetes.io/exclude-from-external-load-balancers`.
    #[error("node is labelled {EXCLUDE_FROM_LOAD_BALANCERS}")]
    Excluded,
    /// Its `NetworkUnavailable` condition is `True`.
    #[error("node has condition NetworkUnavailable=True")]
    NetworkUnavailable,
}

impl Node {
    /// A node with only a name: labels and conditions unknown, so it takes part.
    pub fn new(name: &str) -> Self {
        let mut labels = Labels::new();
        // The kubelet sets this label on every node; selectors use it.
        labels.insert("kubernetes.io/hostname".into(), name.into());
        Self { name: name.into(), labels, ..Self::default() }
    }

    /// Whether this node must stay out of announcements, and why.
    pub fn exclusion(&self) -> Option<NodeExclusion> {
        if self.labels.contains_key(EXCLUDE_FROM_LOAD_BALANCERS) {
            Some(NodeExclusion::Excluded)
        } else if self.network_unavailable {
            Some(NodeExclusion::NetworkUnavailable)
        } else {
            None
        }
    }
}
