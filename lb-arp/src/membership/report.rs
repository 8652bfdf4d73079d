//! Reports: what each member says about itself, carried by foca's custom
//! broadcasts with its membership updates.
//!
//! A report holds the IPs the member answers for, the interfaces it can
//! answer on, and the MACs it answers from (which are therefore no address
//! conflict when they answer for one of our IPs during a handover). A
//! report too large for one datagram is cut into chunks; a report counts
//! once every chunk of its generation has arrived, and until then the
//! previous complete one stands. A newer generation replaces every chunk
//! of an older one, in our table and in foca's dissemination queue.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use foca::{BroadcastHandler, Invalidates};
use lb_core::l2::Interfaces;
use serde::{Deserialize, Serialize};

use super::identity::MemberId;

/// Encoded addresses per chunk, in bytes (an IPv4 address costs 5, an
/// IPv6 one 17): several chunks fit one datagram beside the membership
/// updates.
const CHUNK_BUDGET: usize = 400;
/// More chunks than a pool could need is a hostile or broken sender.
const MAX_CHUNKS: u16 = 4096;
/// MACs remembered from other members, at most (a cluster's NICs).
const MAX_KNOWN_MACS: usize = 4096;
/// A node name is a DNS subdomain (at most 253 bytes).
const MAX_NAME: usize = 253;

/// One chunk of a member's report, as on the wire (postcard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub node: String,
    pub generation: u64,
    pub chunk: u16,
    pub chunks: u16,
    /// Chunk 0 only: the interfaces it can answer on, and whether one of
    /// them passes the name exclusions.
    pub interfaces: Option<(Vec<String>, bool)>,
    /// Chunk 0 only.
    pub macs: Vec<[u8; 6]>,
    pub answering: Vec<IpAddr>,
}

/// Why a report was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("report does not decode: {0}")]
    Decode(#[from] postcard::Error),
    #[error("report is inconsistent: {0}")]
    Invalid(&'static str),
}

impl Report {
    fn check(&self) -> Result<(), ReportError> {
        if self.node.is_empty() || self.node.len() > MAX_NAME {
            return Err(ReportError::Invalid("node name length"));
        }
        if self.chunks == 0 || self.chunks > MAX_CHUNKS || self.chunk >= self.chunks {
            return Err(ReportError::Invalid("chunk numbering"));
        }
        if self.chunk != 0 && (self.interfaces.is_some() || !self.macs.is_empty()) {
            return Err(ReportError::Invalid("interfaces outside chunk 0"));
        }
        if self.chunk == 0 && self.interfaces.is_none() {
            return Err(ReportError::Invalid("chunk 0 without interfaces"));
        }
        Ok(())
    }

    pub fn decode(data: &[u8]) -> Result<Self, ReportError> {
        let report: Report = postcard::from_bytes(data)?;
        report.check()?;
        Ok(report)
    }
}

/// What one member said, complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Said {
    pub generation: u64,
    pub answering: BTreeSet<IpAddr>,
    pub interfaces: Interfaces,
    pub macs: BTreeSet<[u8; 6]>,
}

/// The chunks of `said`, encoded.
pub fn encode(node: &str, said: &Said) -> Vec<Vec<u8>> {
    let mut groups: Vec<Vec<IpAddr>> = vec![Vec::new()];
    let mut used = 0;
    for &ip in &said.answering {
        let cost = if ip.is_ipv4() { 5 } else { 17 };
        if used + cost > CHUNK_BUDGET {
            groups.push(Vec::new());
            used = 0;
        }
        used += cost;
        groups.last_mut().expect("one group at least").push(ip);
    }
    let chunks = u16::try_from(groups.len()).unwrap_or(u16::MAX);
    groups
        .into_iter()
        .take(usize::from(MAX_CHUNKS))
        .enumerate()
        .map(|(i, answering)| {
            let first = i == 0;
            let report = Report {
                node: node.to_string(),
                generation: said.generation,
                chunk: u16::try_from(i).unwrap_or(u16::MAX),
                chunks: chunks.min(MAX_CHUNKS),
                interfaces: first
                    .then(|| (said.interfaces.usable.iter().cloned().collect(), said.interfaces.default_usable)),
                macs: if first { said.macs.iter().copied().collect() } else { Vec::new() },
                answering,
            };
            postcard::to_allocvec(&report).expect("a report always encodes")
        })
        .collect()
}

#[derive(Debug, Default)]
struct Partial {
    generation: u64,
    parts: Vec<Option<Report>>,
}

/// Every member's reports as heard, shared between foca's broadcast
/// handler and [`super::Membership`].
#[derive(Debug, Default)]
pub struct Heard {
    pub me: String,
    partial: BTreeMap<String, Partial>,
    pub complete: BTreeMap<String, Said>,
    /// Set when a complete report changed; cleared by the reader.
    pub changed: bool,
    /// Every MAC another member ever said it answers from, down members
    /// included: when a partition heals, the other side's gratuitous ARP
    /// arrives before its membership does, and must not look like a
    /// foreign host using our IP.
    pub known_macs: BTreeSet<[u8; 6]>,
}

impl Heard {
    pub fn new(me: &str) -> Self {
        Self { me: me.to_string(), ..Self::default() }
    }

    /// Takes a chunk; whether it was news (to be passed on).
    fn receive(&mut self, report: Report) -> bool {
        let node = report.node.clone();
        let entry = self.partial.entry(node.clone()).or_default();
        if report.generation < entry.generation
            || self.complete.get(&node).is_some_and(|s| s.generation >= report.generation)
        {
            return false;
        }
        if report.generation > entry.generation || entry.parts.len() != usize::from(report.chunks) {
            if report.generation == entry.generation {
                // Same generation, other chunk count: a broken sender.
                return false;
            }
            *entry = Partial { generation: report.generation, parts: vec![None; usize::from(report.chunks)] };
        }
        let slot = &mut entry.parts[usize::from(report.chunk)];
        if slot.is_some() {
            return false;
        }
        *slot = Some(report);
        if entry.parts.iter().all(Option::is_some) {
            let parts = std::mem::take(&mut entry.parts);
            let mut said = Said { generation: entry.generation, ..Said::default() };
            for part in parts.into_iter().flatten() {
                if let Some((usable, default_usable)) = part.interfaces {
                    said.interfaces = Interfaces { usable: usable.into_iter().collect(), default_usable };
                    said.macs = part.macs.into_iter().collect();
                }
                said.answering.extend(part.answering);
            }
            if self.known_macs.len() < MAX_KNOWN_MACS {
                self.known_macs.extend(said.macs.iter().copied());
            }
            self.complete.insert(node, said);
            self.changed = true;
        }
        true
    }

    /// A member gone (down, or restarted as a new run): what it said no
    /// longer holds.
    pub fn forget(&mut self, node: &str) {
        self.partial.remove(node);
        if self.complete.remove(node).is_some() {
            self.changed = true;
        }
    }
}

/// Which chunk of which report a broadcast is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportKey {
    node: String,
    generation: u64,
    chunk: u16,
}

impl Invalidates for ReportKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.node == other.node
            && (self.generation > other.generation
                || (self.generation == other.generation && self.chunk == other.chunk))
    }
}

/// foca's broadcast handler: decodes reports into the shared table.
#[derive(Debug, Clone, Default)]
pub struct Reports(pub Arc<Mutex<Heard>>);

impl BroadcastHandler<MemberId> for Reports {
    type Key = ReportKey;
    type Error = ReportError;

    fn receive_item(&mut self, data: &[u8], sender: Option<&MemberId>) -> Result<Option<ReportKey>, ReportError> {
        let report = Report::decode(data)?;
        let key = ReportKey { node: report.node.clone(), generation: report.generation, chunk: report.chunk };
        let mut heard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if report.node == heard.me {
            // Ours: passed on when we add it, never taken back from others.
            return Ok(sender.is_none().then_some(key));
        }
        Ok(heard.receive(report).then_some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(generation: u64, n: u32) -> Said {
        Said {
            generation,
            answering: (0..n).map(|i| IpAddr::from((0xc000_0200u32 + i).to_be_bytes())).collect(),
            interfaces: Interfaces { usable: BTreeSet::from(["eth0".to_string()]), default_usable: true },
            macs: BTreeSet::from([[2, 0, 0, 0, 0, 1]]),
        }
    }

    fn heard() -> Reports {
        Reports(Arc::new(Mutex::new(Heard::new("me"))))
    }

    #[test]
    fn a_report_counts_once_every_chunk_is_in_and_newer_generations_replace_it() {
        let mut reports = heard();
        let one = said(5, 300);
        let chunks = encode("b", &one);
        assert!(chunks.len() > 2, "300 IPv4 addresses take several chunks");
        // Out of order, with a duplicate: news once each, complete at the last.
        let mut order: Vec<usize> = (0..chunks.len()).rev().collect();
        order.insert(1, order[0]);
        let mut news = 0;
        for (i, &c) in order.iter().enumerate() {
            if reports.receive_item(&chunks[c], None).expect("decodes").is_some() {
                news += 1;
            }
            let complete = reports.0.lock().expect("lock").complete.get("b").cloned();
            assert_eq!(complete.is_some(), i == order.len() - 1);
        }
        assert_eq!(news, chunks.len());
        assert_eq!(reports.0.lock().expect("lock").complete["b"], one);
        // An older generation is no news; a newer one replaces it.
        let old = encode("b", &said(4, 1));
        assert!(reports.receive_item(&old[0], None).expect("decodes").is_none());
        let newer = said(6, 1);
        for c in encode("b", &newer) {
            assert!(reports.receive_item(&c, None).expect("decodes").is_some());
        }
        assert_eq!(reports.0.lock().expect("lock").complete["b"], newer);
        // A newer key invalidates every chunk of an older one, and itself.
        let k = |generation, chunk| ReportKey { node: "b".into(), generation, chunk };
        assert!(k(6, 0).invalidates(&k(5, 3)));
        assert!(k(6, 0).invalidates(&k(6, 0)));
        assert!(!k(6, 0).invalidates(&k(6, 1)));
        assert!(!k(5, 0).invalidates(&k(6, 0)));
    }

    #[test]
    fn our_own_reports_are_passed_on_only_when_we_add_them() {
        let mut reports = heard();
        let ours = encode("me", &said(1, 1));
        assert!(reports.receive_item(&ours[0], None).expect("decodes").is_some());
        let from: MemberId =
            MemberId { name: "b".into(), addr: "192.0.2.2:7946".parse().expect("addr"), started: 1, bump: 0 };
        assert!(reports.receive_item(&ours[0], Some(&from)).expect("decodes").is_none());
        assert!(reports.0.lock().expect("lock").complete.is_empty());
    }

    #[test]
    fn inconsistent_reports_are_refused() {
        let mut reports = heard();
        let bad = |r: Report| postcard::to_allocvec(&r).expect("encodes");
        let base = Report {
            node: "b".into(),
            generation: 1,
            chunk: 0,
            chunks: 1,
            interfaces: Some((vec![], true)),
            macs: vec![],
            answering: vec![],
        };
        for r in [
            Report { chunk: 1, ..base.clone() },
            Report { chunks: 0, ..base.clone() },
            Report { node: String::new(), ..base.clone() },
            Report { interfaces: None, ..base.clone() },
        ] {
            assert!(reports.receive_item(&bad(r), None).is_err());
        }
        assert!(reports.receive_item(b"\xff\xff\xff", None).is_err());
        assert!(reports.receive_item(&bad(base), None).expect("valid").is_some());
    }
}
