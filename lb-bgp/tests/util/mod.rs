//! A network of two BGP speakers on a fake clock, after quinn's
//! `tests/util.rs`: each side is a [`Peer`] driven as a real driver would
//! drive it, every byte and every connect or close takes the link's
//! latency to reach the other side, and the clock jumps to the next
//! delivery or timer. Several connections (links) may run at once, so
//! simultaneous opens and crossed messages are deterministic tests.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lb_bgp::peer::{ConnectionId, Peer, PeerEvent};
use lb_bgp::session::{SessionConfig, SessionEvent, State};
use lb_bgp::wire::{Context, Framer, Message};

/// Something on its way to one side.
#[derive(Debug)]
enum Delivery {
    /// The connection is up at this end.
    Connected {
        link: ConnectionId,
        initiated_locally: bool,
    },
    Bytes {
        link: ConnectionId,
        bytes: Vec<u8>,
    },
    /// The other end closed.
    Closed {
        link: ConnectionId,
    },
}

/// One message a side wrote, with when and in which state it was.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Instant,
    pub link: ConnectionId,
    pub message: Message,
    /// The sender's state when it wrote the message.
    pub state: State,
}

/// One speaker and what it did.
pub struct Side {
    pub peer: Peer,
    pub addr: SocketAddr,
    pub events: Vec<(Instant, PeerEvent)>,
    /// Every message written, in order.
    pub sent: Vec<Sent>,
    /// Links open at this end.
    pub open: BTreeSet<ConnectionId>,
    /// Everything written per link, to cut into messages.
    pub wire: BTreeMap<ConnectionId, Vec<u8>>,
    /// Links this end closed, in order.
    pub closed: Vec<ConnectionId>,
}

impl Side {
    fn new(config: SessionConfig, addr: SocketAddr) -> Self {
        Self {
            peer: Peer::new(config),
            addr,
            events: vec![],
            sent: vec![],
            open: BTreeSet::new(),
            wire: BTreeMap::new(),
            closed: vec![],
        }
    }

    /// Session events, in order.
    pub fn session_events(&self) -> impl Iterator<Item = &SessionEvent> {
        self.events.iter().filter_map(|(_, e)| match e {
            PeerEvent::Session(e) => Some(e),
            _ => None,
        })
    }

    /// The messages written on `link`.
    pub fn sent_on(&self, link: ConnectionId) -> Vec<&Message> {
        self.sent.iter().filter(|s| s.link == link).map(|s| &s.message).collect()
    }
}

pub struct Network {
    pub now: Instant,
    pub sides: [Side; 2],
    /// One-way latency from side `i` to the other.
    pub latency: [Duration; 2],
    /// Deliveries by (time, order of sending), to each side.
    queue: BTreeMap<(Instant, u64), (usize, Delivery)>,
    seq: u64,
    next_link: u64,
    /// Connections asked for and not yet up, by the side that asked.
    pub connects: Vec<(Instant, usize)>,
}

impl Network {
    pub fn new(a: SessionConfig, b: SessionConfig, latency: Duration) -> Self {
        Self {
            now: Instant::now(),
            sides: [
                Side::new(a, "192.0.2.1:179".parse().expect("addr")),
                Side::new(b, "192.0.2.2:179".parse().expect("addr")),
            ],
            latency: [latency, latency],
            queue: BTreeMap::new(),
            seq: 0,
            next_link: 1,
            connects: vec![],
        }
    }

    fn push(&mut self, at: Instant, to: usize, d: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), (to, d));
    }

    /// Starts both sides at the same instant.
    pub fn start(&mut self) {
        for i in 0..2 {
            self.sides[i].peer.start(self.now);
            self.drain(i);
        }
    }

    /// Opens a connection from side `from` now, as after a Connect: the
    /// acceptor sees it after one latency, the initiator after a round
    /// trip (SYN, SYN-ACK).
    pub fn connect(&mut self, from: usize) -> ConnectionId {
        let link = ConnectionId(self.next_link);
        self.next_link += 1;
        let to = 1 - from;
        let there = self.now + self.latency[from];
        let back = there + self.latency[to];
        self.push(there, to, Delivery::Connected { link, initiated_locally: false });
        self.push(back, from, Delivery::Connected { link, initiated_locally: true });
        self.connects.push((self.now, from));
        link
    }

    /// Writes out what side `i` has to say, and acts on its events.
    pub fn drain(&mut self, i: usize) {
        loop {
            let mut moved = false;
            for link in self.sides[i].open.clone() {
                let mut buf = Vec::new();
                if self.sides[i].peer.poll_transmit(link, &mut buf) > 0 {
                    moved = true;
                    self.write(i, link, buf);
                }
            }
            while let Some(event) = self.sides[i].peer.poll_event() {
                moved = true;
                match &event {
                    PeerEvent::Connect => {
                        self.connect(i);
                    }
                    PeerEvent::Close(link) if self.sides[i].open.contains(link) => {
                        let mut buf = Vec::new();
                        let _ = self.sides[i].peer.poll_transmit(*link, &mut buf);
                        if !buf.is_empty() {
                            self.write(i, *link, buf);
                        }
                        self.sides[i].open.remove(link);
                        self.sides[i].closed.push(*link);
                        let at = self.now + self.latency[i];
                        self.push(at, 1 - i, Delivery::Closed { link: *link });
                    }
                    _ => {}
                }
                self.sides[i].events.push((self.now, event));
            }
            if !moved {
                return;
            }
        }
    }

    fn write(&mut self, i: usize, link: ConnectionId, bytes: Vec<u8>) {
        let side = &mut self.sides[i];
        let state = side.peer.state();
        let ctx = Context { four_octet_asn: true, extended_messages: true };
        let mut framer = Framer::new();
        framer.push(&bytes);
        while let Some(Ok(frame)) = framer.next_frame(&ctx) {
            // Decoded only to look at: a 4-octet context reads what we write.
            if let Ok(message) = Message::decode(&frame, &ctx) {
                side.sent.push(Sent { at: self.now, link, message, state });
            }
        }
        side.wire.entry(link).or_default().extend_from_slice(&bytes);
        let at = self.now + self.latency[i];
        self.push(at, 1 - i, Delivery::Bytes { link, bytes });
    }

    fn deliver(&mut self, to: usize, d: Delivery) {
        let now = self.now;
        let side = &mut self.sides[to];
        match d {
            Delivery::Connected { link, initiated_locally } => {
                side.open.insert(link);
                let local = side.addr;
                side.peer.handle_connected(now, link, local, local, initiated_locally);
            }
            Delivery::Bytes { link, bytes } if side.open.contains(&link) => side.peer.handle_bytes(now, link, &bytes),
            Delivery::Closed { link } if side.open.remove(&link) => side.peer.handle_closed(now, link),
            // For a connection this end closed already: lost.
            Delivery::Bytes { .. } | Delivery::Closed { .. } => {}
        }
        self.drain(to);
    }

    /// Runs deliveries and timers until `now + limit`.
    pub fn run_for(&mut self, limit: Duration) {
        let until = self.now + limit;
        loop {
            let timer = self.sides.iter().filter_map(|s| s.peer.poll_timeout()).min();
            let delivery = self.queue.keys().next().map(|(t, _)| *t);
            let Some(next) = [timer, delivery].into_iter().flatten().min().filter(|t| *t <= until) else {
                self.now = until;
                return;
            };
            // Time never goes backwards, even for a timer already due.
            self.now = self.now.max(next);
            if delivery.is_some_and(|t| t <= self.now) {
                let key = *self.queue.keys().next().expect("a delivery");
                let (to, d) = self.queue.remove(&key).expect("a delivery");
                self.deliver(to, d);
                continue;
            }
            for i in 0..2 {
                if self.sides[i].peer.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.sides[i].peer.handle_timeout(self.now);
                    self.drain(i);
                }
            }
        }
    }
}
