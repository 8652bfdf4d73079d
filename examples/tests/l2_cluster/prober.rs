//! The client's own raw socket: ARP requests at a steady rate, and every
//! ARP reply, gratuitous ARP and Neighbor Advertisement seen, timestamped.
//! Measures what a client sees (its first answer from a new owner), to
//! the resolution of the request interval.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lb_arp::wire::{ArpRepr, Frame, FrameBody, MacAddr, NdpRepr, Operation, arp_frame};
use lb_k8s::drivers::l2::socket::PacketSocket;

use crate::support::Netns;

/// A frame the prober saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub at: Instant,
    /// The answering MAC, lower case.
    pub mac: String,
    /// The IP it speaks for.
    pub ip: IpAddr,
    /// A gratuitous ARP or an unsolicited advertisement (not an answer).
    pub announcement: bool,
    /// For an answer: the sender IP of the request it answers (the prober
    /// varies it to match answers to requests).
    pub tag: Option<Ipv4Addr>,
}

/// A request sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub at: Instant,
    pub tag: Ipv4Addr,
}

/// Runs in the client namespace until dropped or [`Prober::stop`].
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(Vec<Sent>, Vec<Reply>)>>,
}

/// Sender IPs the requests rotate through (in the client's /24, clear of
/// the nodes and the Services): an answer names the request it answers.
fn tag(i: u64) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 64 + (i % 128) as u8)
}

impl Prober {
    /// Asks who has `target` every `interval` (`None`: only listens), at
    /// most `limit` times, on `ifname` in `ns`.
    pub fn start(ns: &Netns, ifname: &str, target: Option<Ipv4Addr>, interval: Duration, limit: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let ifname = ifname.to_string();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = ns.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(run(&ifname, target, interval, limit, flag, ready_tx))
        });
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        Self { stop, thread: Some(thread) }
    }

    /// Stops and returns what was sent and seen.
    pub fn stop(mut self) -> (Vec<Sent>, Vec<Reply>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn run(
    ifname: &str,
    target: Option<Ipv4Addr>,
    interval: Duration,
    limit: u64,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) -> (Vec<Sent>, Vec<Reply>) {
    let index = nix::net::if_::if_nametoindex(ifname).expect("client interface");
    let socket = PacketSocket::open(index).expect("packet socket");
    let mac = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).expect("MAC");
    let bytes: Vec<u8> = mac.trim().split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
    let ours = MacAddr(bytes.try_into().expect("a 6-byte MAC"));
    let _ = ready.send(());
    let mut sent = Vec::new();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut next = tokio::time::Instant::now();
    let mut count = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(target) = target
            && count < limit
            && tokio::time::Instant::now() >= next
        {
            // Catch up in bursts when late: the rate is what was asked.
            while next <= tokio::time::Instant::now() && count < limit {
                let t = tag(count);
                let request = ArpRepr {
                    operation: Operation::Request,
                    sender_mac: ours,
                    sender_ip: t,
                    target_mac: MacAddr([0; 6]),
                    target_ip: target,
                };
                if socket.send(&arp_frame(MacAddr([0xff; 6]), ours, &request)).is_ok() {
                    sent.push(Sent { at: Instant::now(), tag: t });
                }
                count += 1;
                next += interval;
            }
        }
        let wait = if target.is_some() && count < limit {
            next
        } else {
            tokio::time::Instant::now() + Duration::from_millis(5)
        };
        tokio::select! {
            got = std::future::poll_fn(|cx| socket.poll_recv(cx, &mut buf)) => {
                let Ok(Some(n)) = got else { continue };
                let at = Instant::now();
                if let Some(reply) = parse(&buf[..n], at, ours) {
                    seen.push(reply);
                }
            }
            () = tokio::time::sleep_until(wait) => {}
        }
    }
    (sent, seen)
}

fn parse(bytes: &[u8], at: Instant, ours: MacAddr) -> Option<Reply> {
    let frame = Frame::parse(bytes).ok()?;
    if frame.ethernet.src == ours {
        return None;
    }
    let mac = frame.ethernet.src.to_string().to_lowercase();
    match frame.body {
        FrameBody::Arp(arp) if arp.sender_ip == arp.target_ip => {
            Some(Reply { at, mac, ip: arp.sender_ip.into(), announcement: true, tag: None })
        }
        FrameBody::Arp(arp) if arp.operation == Operation::Reply => {
            Some(Reply { at, mac, ip: arp.sender_ip.into(), announcement: false, tag: Some(arp.target_ip) })
        }
        FrameBody::Ndp(ndp) => match ndp.message {
            NdpRepr::NeighborAdvert { target, solicited, .. } => {
                Some(Reply { at, mac, ip: target.into(), announcement: !solicited, tag: None })
            }
            _ => None,
        },
        _ => None,
    }
}
