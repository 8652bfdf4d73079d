//! Layer 2: which node announces a Service's IP, by MetalLB's ranking.
//!
//! On a segment one node answers ARP/NDP for an IP. When an IP needs a
//! new owner, the candidates (live, eligible speakers) are ranked as
//! MetalLB ranks them, so that a cluster moving over from MetalLB, or
//! planned fresh, places every IP exactly where MetalLB would:
//! 1. the summed weights of the L2Advertisements' `preferredNodeSelectors`
//!    terms that match the node, highest first;
//! 2. then `sha256(nodeName + "#" + ip)` ascending, over the Service's
//!    first IP (the winner announces all of the Service's IPs);
//! 3. then the node name, so the order is total.
//!
//! Keeping an IP where it is while its owner stays live and eligible
//! (sticky ownership) is the caller's rule; this module only ranks.

use std::cmp::Reverse;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::config::PreferredNodeSelector;
use crate::node::Node;

/// The summed weights of the terms `node` matches.
pub fn preference(node: &Node, terms: &[PreferredNodeSelector]) -> u32 {
    terms.iter().filter(|t| t.preference.matches(&node.labels)).map(|t| u32::from(t.weight)).sum()
}

/// MetalLB's tie-breaker: `sha256("<node>#<ip>")`.
pub fn hash(node: &str, ip: IpAddr) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update(b"#");
    h.update(ip.to_string().as_bytes());
    h.finalize().into()
}

/// `candidates` best first for announcing `ip` (the Service's first IP).
pub fn rank<'a>(
    candidates: impl IntoIterator<Item = &'a Node>,
    ip: IpAddr,
    terms: &[PreferredNodeSelector],
) -> Vec<&'a Node> {
    let mut ranked: Vec<(Reverse<u32>, [u8; 32], &Node)> =
        candidates.into_iter().map(|n| (Reverse(preference(n, terms)), hash(&n.name, ip), n)).collect();
    ranked.sort_by(|a, b| (a.0, a.1, &a.2.name).cmp(&(b.0, b.1, &b.2.name)));
    ranked.into_iter().map(|(_, _, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::LabelSelector;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        let mut n = Node::new(name);
        n.labels = labels.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        n
    }

    fn names(nodes: &[&Node]) -> Vec<String> {
        nodes.iter().map(|n| n.name.clone()).collect()
    }

    #[test]
    fn the_hash_is_metallbs() {
        // Independent oracle: Python's hashlib.sha256(b"node-a#192.0.2.1").
        let expected = "9028b03eebd9c50f45e3cb24b507db170990cd5f206b44ba22be4e1dc2acad0a";
        let got: String = hash("node-a", "192.0.2.1".parse().expect("IP")).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn without_preferences_the_lowest_hash_wins() {
        // sha256 of node#192.0.2.1: node-c 22e6…, node-a 9028…, node-b fbbf….
        let nodes = [node("node-a", &[]), node("node-b", &[]), node("node-c", &[])];
        let ranked = rank(&nodes, "192.0.2.1".parse().expect("IP"), &[]);
        assert_eq!(names(&ranked), ["node-c", "node-a", "node-b"]);
    }

    #[test]
    fn matching_weights_add_up_and_come_first() {
        let terms = [
            PreferredNodeSelector {
                weight: 30,
                preference: LabelSelector::from_labels([("zone".into(), "a".into())].into()),
            },
            PreferredNodeSelector {
                weight: 20,
                preference: LabelSelector::from_labels([("ssd".into(), "yes".into())].into()),
            },
            PreferredNodeSelector {
                weight: 40,
                preference: LabelSelector::from_labels([("zone".into(), "b".into())].into()),
            },
        ];
        let nodes = [
            node("node-a", &[("zone", "a"), ("ssd", "yes")]), // 50
            node("node-b", &[("zone", "b")]),                 // 40
            node("node-c", &[]),                              // 0, best hash
        ];
        let ranked = rank(&nodes, "192.0.2.1".parse().expect("IP"), &terms);
        assert_eq!(names(&ranked), ["node-a", "node-b", "node-c"]);
        assert_eq!(preference(&nodes[0], &terms), 50);
    }
}
