//! Who is alive, and what each member answers for: SWIM membership (foca)
//! among the speakers, without I/O.
//!
//! # Methods by kind
//!
//! - **Commands**: [`Membership::start`], [`Membership::set_local`],
//!   [`Membership::leave`].
//! - **Inputs**: [`Membership::handle_datagram`], [`Membership::handle_timeout`].
//! - **Outputs**: [`Membership::poll_transmit`], [`Membership::poll_timeout`],
//!   [`Membership::poll_event`].
//! - **Queries**: [`Membership::claims`], [`Membership::live`],
//!   [`Membership::is_ready`], [`Membership::members`], [`Membership::stats`].
//!
//! After every command or input, send every [`Transmit`] and re-arm the
//! timer from [`Membership::poll_timeout`]; time never goes backwards.
//! When a timer and datagrams are both due, hand in the datagrams first
//! (an ack already received is not a missed ack).
//!
//! # Tuned for a LAN
//!
//! [`Timing::default`] declares a dead member down in about 0.3 s (a
//! probe every 80 ms, 25 ms for the direct ack, then indirect probes
//! through other members so one lost packet is no death, then 160 ms for
//! the suspect to refute), where memberlist's LAN defaults (MetalLB) take
//! about 5 s. A node that is itself slow stretches its suspicion time (see
//! [`health`]).
//!
//! # Reports
//!
//! Every member gossips what it answers for, on which interfaces it can
//! answer and from which MACs ([`report`]), whenever that changes, when a
//! member joins (so it hears everyone) and every [`Timing::republish`].
//! [`Membership::claims`] turns what the live members said into
//! [`lb_core::l2::Claims`], the input that makes ownership sticky and lets
//! a healed partition be decided the same way on every node.
//!
//! A starting member is not ready ([`Membership::is_ready`]) until every
//! seed it can reach has reported, or [`Timing::startup_wait`] has passed:
//! until then it claims nothing, so that members started together place
//! IPs by the ranking rather than first come, first served.

pub mod envelope;
pub mod health;
pub mod identity;
pub mod report;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU8, NonZeroUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use foca::{Config, Foca, OwnedNotification, PostcardCodec, Timer};
use lb_core::l2::{Claims, Interfaces};
use rand::SeedableRng;
use rand::rngs::SmallRng;

pub use envelope::{EnvelopeError, GossipKey};
pub use identity::MemberId;
use report::{Heard, Reports, Said};

/// The timers of the membership protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// How often a member is probed.
    pub probe_period: Duration,
    /// How long for a direct ack before asking others to probe.
    pub probe_rtt: Duration,
    /// Members asked to probe indirectly.
    pub indirect_probes: usize,
    /// How long a suspect has to refute before it is declared down.
    pub suspicion: Duration,
    /// Updates pushed to a few members this often, besides probes.
    pub gossip_every: Duration,
    /// Members believed down are greeted this often, so a healed
    /// partition joins up again.
    pub greet_down_every: Duration,
    /// Our report is sent afresh this often.
    pub republish: Duration,
    /// The longest a starting member waits to hear from the others.
    pub startup_wait: Duration,
    /// A timer handled later than this counts against local health.
    pub late_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            probe_period: Duration::from_millis(80),
            probe_rtt: Duration::from_millis(25),
            indirect_probes: 3,
            suspicion: Duration::from_millis(160),
            gossip_every: Duration::from_millis(40),
            greet_down_every: Duration::from_millis(500),
            republish: Duration::from_secs(10),
            startup_wait: Duration::from_secs(2),
            late_after: Duration::from_millis(20),
        }
    }
}

/// How to join.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// This node's name.
    pub name: String,
    /// Where the others reach us.
    pub addr: SocketAddr,
    /// Where to look for the others (our own address may be among them).
    pub seeds: Vec<SocketAddr>,
    /// With a key, only datagrams tagged with it are taken.
    pub key: Option<GossipKey>,
    pub timing: Timing,
    /// When this run started, microseconds since the Unix epoch (a
    /// restarted speaker must be a newer member than its previous run).
    pub started: u64,
    /// Seeds foca's random choices.
    pub rng_seed: u64,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// What happened, for logs and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent {
    MemberJoined {
        name: String,
        addr: SocketAddr,
    },
    MemberDown {
        name: String,
    },
    /// A member restarted: what its previous run said is void.
    MemberRestarted {
        name: String,
    },
    /// [`Membership::claims`] or [`Membership::live`] changed.
    ClaimsChanged,
    /// Start-up is over: claim from now on.
    Ready {
        waited: Duration,
        heard_everyone: bool,
    },
    /// We were declared down and rejoined as a renewed identity.
    Rejoined,
    /// Only datagrams we cannot verify arrive and no member is live: the
    /// others use another key (or none). Until that ends we claim nothing,
    /// rather than answer beside them as if alone.
    KeyMismatch,
}

/// How long unverifiable datagrams keep a member with no live peer from
/// claiming.
const LOCKOUT: Duration = Duration::from_secs(10);

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipStats {
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// Dropped: no tag, or a tag that does not verify.
    pub unauthenticated: u64,
    /// Dropped: not a gossip datagram, or foca refused it.
    pub malformed: u64,
    /// The current local health score (0: healthy).
    pub health_score: u8,
}

/// One member as seen here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub name: String,
    pub addr: SocketAddr,
    pub state: &'static str,
    pub incarnation: u16,
}

type Engine = Foca<MemberId, PostcardCodec, SmallRng, Reports>;

/// A due timer: foca's, or ours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Foca(Timer<MemberId>),
}

/// foca's runtime: collects what it asks for.
struct Io<'a> {
    now: Instant,
    sends: &'a mut Vec<(MemberId, Vec<u8>)>,
    timers: &'a mut BinaryHeap<Reverse<(Instant, u64, Due)>>,
    seq: &'a mut u64,
    notes: &'a mut Vec<OwnedNotification<MemberId>>,
}

impl foca::Runtime<MemberId> for Io<'_> {
    fn notify(&mut self, notification: foca::Notification<'_, MemberId>) {
        self.notes.push(notification.to_owned());
    }

    fn send_to(&mut self, to: MemberId, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<MemberId>, after: Duration) {
        *self.seq += 1;
        self.timers.push(Reverse((self.now + after, *self.seq, Due::Foca(event))));
    }
}

/// SWIM membership and the members' reports (see the module doc).
pub struct Membership {
    foca: Engine,
    heard: Arc<Mutex<Heard>>,
    config: MembershipConfig,
    base: Config,
    health: health::LocalHealth,
    timers: BinaryHeap<Reverse<(Instant, u64, Due)>>,
    seq: u64,
    sends: Vec<(MemberId, Vec<u8>)>,
    notes: Vec<OwnedNotification<MemberId>>,
    out: VecDeque<Transmit>,
    events: VecDeque<MembershipEvent>,
    stats: MembershipStats,
    local: Said,
    start: Option<Instant>,
    ready: bool,
    next_republish: Option<Instant>,
    left: bool,
    last_unauthenticated: Option<Instant>,
    locked_out: bool,
    next_greeting: Option<Instant>,
}

/// Seeds not yet members are greeted again this often while starting (a
/// seed that was not listening yet missed the first greeting), then this
/// often for good (a node that starts alone finds the others when they come).
const GREET_STARTING: Duration = Duration::from_millis(200);
const GREET_LATER: Duration = Duration::from_secs(2);

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("name", &self.config.name)
            .field("ready", &self.ready)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Membership {
    pub fn new(config: MembershipConfig) -> Self {
        let t = &config.timing;
        let mut base = Config::new_lan(std::num::NonZeroU32::MIN);
        base.probe_period = t.probe_period;
        base.probe_rtt = t.probe_rtt;
        base.num_indirect_probes = NonZeroUsize::new(t.indirect_probes.max(1)).unwrap_or(NonZeroUsize::MIN);
        base.suspect_to_down_after = t.suspicion;
        // Enough for a report's chunks to reach every member of a LAN cluster.
        base.max_transmissions = NonZeroU8::new(6).unwrap_or(NonZeroU8::MIN);
        base.remove_down_after = Some(Duration::from_secs(3600));
        base.max_packet_size = NonZeroUsize::new(1400 - envelope::TAG_LEN - 4).unwrap_or(NonZeroUsize::MIN);
        base.periodic_gossip = Some(foca::PeriodicParams {
            frequency: t.gossip_every,
            num_members: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        });
        base.periodic_announce =
            Some(foca::PeriodicParams { frequency: Duration::from_secs(5), num_members: NonZeroUsize::MIN });
        base.periodic_announce_to_down_members = Some(foca::PeriodicParams {
            frequency: t.greet_down_every,
            num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
        });
        let id = MemberId { name: config.name.clone(), addr: config.addr, started: config.started, bump: 0 };
        let heard = Arc::new(Mutex::new(Heard::new(&config.name)));
        let foca = Foca::with_custom_broadcast(
            id,
            base.clone(),
            SmallRng::seed_from_u64(config.rng_seed),
            PostcardCodec,
            Reports(heard.clone()),
        );
        let health = health::LocalHealth::new(config.timing.late_after);
        let local = Said { generation: config.started, ..Said::default() };
        Self {
            foca,
            heard,
            config,
            base,
            health,
            timers: BinaryHeap::new(),
            seq: 0,
            sends: Vec::new(),
            notes: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: MembershipStats::default(),
            local,
            start: None,
            ready: false,
            next_republish: None,
            left: false,
            last_unauthenticated: None,
            locked_out: false,
            next_greeting: None,
        }
    }

    fn heard(&self) -> MutexGuard<'_, Heard> {
        self.heard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on foca with a runtime collecting its requests, then
    /// turns them into datagrams and events.
    fn drive(&mut self, now: Instant, f: impl FnOnce(&mut Engine, &mut Io<'_>) -> Result<(), foca::Error>) -> bool {
        let mut io =
            Io { now, sends: &mut self.sends, timers: &mut self.timers, seq: &mut self.seq, notes: &mut self.notes };
        let ok = f(&mut self.foca, &mut io).is_ok();
        for (to, data) in self.sends.drain(..) {
            self.stats.datagrams_sent += 1;
            self.out.push_back(Transmit { to: to.addr, data: envelope::seal(self.config.key.as_ref(), &data) });
        }
        let notes = std::mem::take(&mut self.notes);
        let mut republish = false;
        for note in notes {
            match note {
                OwnedNotification::MemberUp(id) => {
                    republish = true;
                    self.events.push_back(MembershipEvent::MemberJoined { name: id.name.clone(), addr: id.addr });
                    self.events.push_back(MembershipEvent::ClaimsChanged);
                }
                OwnedNotification::MemberDown(id) => {
                    self.heard().forget(&id.name);
                    self.events.push_back(MembershipEvent::MemberDown { name: id.name });
                    self.events.push_back(MembershipEvent::ClaimsChanged);
                }
                OwnedNotification::Rename(old, new) if old.started != new.started => {
                    self.heard().forget(&new.name);
                    self.events.push_back(MembershipEvent::MemberRestarted { name: new.name });
                    self.events.push_back(MembershipEvent::ClaimsChanged);
                }
                OwnedNotification::Rejoin(_) => {
                    republish = true;
                    self.events.push_back(MembershipEvent::Rejoined);
                }
                _ => {}
            }
        }
        if std::mem::take(&mut self.heard().changed) {
            self.events.push_back(MembershipEvent::ClaimsChanged);
        }
        if republish && !self.left {
            self.publish(now);
        }
        self.check_ready(now);
        ok
    }

    /// Greets the seeds; call once, before anything else.
    pub fn start(&mut self, now: Instant) {
        self.start = Some(now);
        self.next_republish = Some(now + self.config.timing.republish);
        self.greet_seeds(now);
        self.publish(now);
    }

    /// Greets every seed that is not a live member yet.
    fn greet_seeds(&mut self, now: Instant) {
        let me = self.config.addr;
        let members: BTreeSet<SocketAddr> = self.foca.iter_members().map(|m| m.id().addr).collect();
        let seeds: Vec<SocketAddr> =
            self.config.seeds.iter().copied().filter(|s| *s != me && !members.contains(s)).collect();
        for seed in seeds {
            // Who is there is not known yet: foca greets by address, the
            // name is learnt from the answer.
            let probe = MemberId { name: String::new(), addr: seed, started: 0, bump: 0 };
            self.drive(now, |foca, io| foca.announce(probe, io));
        }
        self.next_greeting = Some(now + if self.ready { GREET_LATER } else { GREET_STARTING });
    }

    /// What we answer for, where we can answer, and from which MACs:
    /// gossiped when it changes.
    pub fn set_local(
        &mut self,
        now: Instant,
        answering: BTreeSet<IpAddr>,
        interfaces: Interfaces,
        macs: BTreeSet<[u8; 6]>,
    ) {
        if self.local.answering == answering && self.local.interfaces == interfaces && self.local.macs == macs {
            return;
        }
        self.local.answering = answering;
        self.local.interfaces = interfaces;
        self.local.macs = macs;
        self.publish(now);
        self.events.push_back(MembershipEvent::ClaimsChanged);
    }

    /// Our report, as a new generation, pushed to a few members at once.
    fn publish(&mut self, now: Instant) {
        self.local.generation += 1;
        for chunk in report::encode(&self.config.name, &self.local) {
            let _ = self.foca.add_broadcast(&chunk);
        }
        self.next_republish = Some(now + self.config.timing.republish);
        self.drive_gossip(now);
    }

    fn drive_gossip(&mut self, now: Instant) {
        let mut io =
            Io { now, sends: &mut self.sends, timers: &mut self.timers, seq: &mut self.seq, notes: &mut self.notes };
        let _ = self.foca.gossip(&mut io);
        for (to, data) in self.sends.drain(..) {
            self.stats.datagrams_sent += 1;
            self.out.push_back(Transmit { to: to.addr, data: envelope::seal(self.config.key.as_ref(), &data) });
        }
    }

    /// Tells the members we are leaving (a clean stop): they declare us
    /// down at once rather than after a probe and a suspicion.
    pub fn leave(&mut self, now: Instant) {
        self.left = true;
        self.drive(now, |foca, io| foca.leave_cluster(io));
    }

    /// A datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, _from: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_received += 1;
        let message = match envelope::open(self.config.key.as_ref(), datagram) {
            Ok(m) => m,
            Err(EnvelopeError::Untagged | EnvelopeError::BadTag | EnvelopeError::NoKey) => {
                self.stats.unauthenticated += 1;
                self.last_unauthenticated = Some(now);
                self.check_lockout(now);
                return;
            }
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if self.left {
            return;
        }
        if !self.drive(now, |foca, io| foca.handle_data(message, io)) {
            self.stats.malformed += 1;
        }
    }

    /// Handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, _, due))) = self.timers.pop() else { break };
            if self.health.timer_handled(now.saturating_duration_since(at)) {
                let mut config = self.base.clone();
                config.suspect_to_down_after = self.health.scale(self.base.suspect_to_down_after);
                let _ = self.foca.set_config(config);
            }
            let Due::Foca(timer) = due;
            if !self.left {
                self.drive(now, |foca, io| foca.handle_timer(timer, io));
            }
        }
        if !self.left && self.next_republish.is_some_and(|t| t <= now) {
            self.publish(now);
        }
        if !self.left && self.next_greeting.is_some_and(|t| t <= now) {
            self.greet_seeds(now);
        }
        self.check_ready(now);
        self.check_lockout(now);
    }

    fn check_lockout(&mut self, now: Instant) {
        let alone = self.foca.iter_members().next().is_none();
        let locked = alone && self.last_unauthenticated.is_some_and(|t| now.saturating_duration_since(t) < LOCKOUT);
        if locked != self.locked_out {
            self.locked_out = locked;
            if locked {
                self.events.push_back(MembershipEvent::KeyMismatch);
            }
            self.events.push_back(MembershipEvent::ClaimsChanged);
        }
    }

    fn check_ready(&mut self, now: Instant) {
        let Some(start) = self.start else { return };
        if self.ready {
            return;
        }
        let me = self.config.addr;
        let heard_everyone = {
            let heard = self.heard();
            self.config.seeds.iter().filter(|s| **s != me).all(|seed| {
                self.foca.iter_members().any(|m| m.id().addr == *seed && heard.complete.contains_key(&m.id().name))
            })
        };
        let waited = now.saturating_duration_since(start);
        if heard_everyone || waited >= self.config.timing.startup_wait {
            self.ready = true;
            self.events.push_back(MembershipEvent::Ready { waited, heard_everyone });
            self.events.push_back(MembershipEvent::ClaimsChanged);
        }
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<MembershipEvent> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let foca = self.timers.peek().map(|Reverse((at, _, _))| *at);
        let startup = (!self.ready).then(|| self.start.map(|s| s + self.config.timing.startup_wait)).flatten();
        let lockout = self.locked_out.then(|| self.last_unauthenticated.map(|t| t + LOCKOUT)).flatten();
        let (republish, greeting) = if self.left { (None, None) } else { (self.next_republish, self.next_greeting) };
        [foca, startup, republish, lockout, greeting].into_iter().flatten().min()
    }

    /// Whether to claim: start-up is over (see the module doc), and we
    /// are not locked out by a key mismatch ([`MembershipEvent::KeyMismatch`]).
    pub fn is_ready(&self) -> bool {
        self.ready && !self.locked_out
    }

    /// The members alive now (suspects included), this node too.
    pub fn live(&self) -> BTreeSet<String> {
        let mut live: BTreeSet<String> = self.foca.iter_members().map(|m| m.id().name.clone()).collect();
        live.insert(self.config.name.clone());
        live
    }

    /// What the live members (this one included) said.
    pub fn claims(&self) -> Claims {
        let live = self.live();
        let mut claims = Claims::new();
        let heard = self.heard();
        let local = std::iter::once((&self.config.name, &self.local));
        for (name, said) in heard.complete.iter().filter(|(n, _)| live.contains(*n)).chain(local) {
            claims.set_answering(name, said.answering.iter().copied());
            claims.interfaces.insert(name.clone(), said.interfaces.clone());
        }
        claims
    }

    /// The MACs the other members answer from, or answered from (see
    /// [`report::Heard::known_macs`]): never an address conflict.
    pub fn peer_macs(&self) -> BTreeSet<[u8; 6]> {
        let heard = self.heard();
        let mine = &self.local.macs;
        heard.known_macs.iter().filter(|m| !mine.contains(*m)).copied().collect()
    }

    /// Every member known, down ones included, by name.
    pub fn members(&self) -> Vec<MemberView> {
        let mut members: BTreeMap<String, MemberView> = BTreeMap::new();
        for m in self.foca.iter_membership_state() {
            let state = match m.state() {
                foca::State::Alive => "alive",
                foca::State::Suspect => "suspect",
                foca::State::Down => "down",
            };
            members.insert(
                m.id().name.clone(),
                MemberView { name: m.id().name.clone(), addr: m.id().addr, state, incarnation: m.incarnation() },
            );
        }
        members.into_values().collect()
    }

    pub fn stats(&self) -> MembershipStats {
        MembershipStats { health_score: self.health.score(), ..self.stats }
    }
}
