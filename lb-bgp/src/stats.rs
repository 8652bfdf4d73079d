//! Counters of a session, kept by the session itself as it encodes and
//! decodes, so a driver never re-reads message headers to count them.

use crate::wire::MessageType;

/// Messages of each type.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MessageCounts {
    pub open: u64,
    pub update: u64,
    pub notification: u64,
    pub keepalive: u64,
    pub route_refresh: u64,
}

impl MessageCounts {
    /// The counter of `kind`.
    pub fn get(&self, kind: MessageType) -> u64 {
        match kind {
            MessageType::Open => self.open,
            MessageType::Update => self.update,
            MessageType::Notification => self.notification,
            MessageType::Keepalive => self.keepalive,
            MessageType::RouteRefresh => self.route_refresh,
        }
    }

    fn slot(&mut self, kind: MessageType) -> &mut u64 {
        match kind {
            MessageType::Open => &mut self.open,
            MessageType::Update => &mut self.update,
            MessageType::Notification => &mut self.notification,
            MessageType::Keepalive => &mut self.keepalive,
            MessageType::RouteRefresh => &mut self.route_refresh,
        }
    }

    pub(crate) fn add(&mut self, kind: MessageType) {
        *self.slot(kind) += 1;
    }

    pub(crate) fn take_back(&mut self, kind: MessageType) {
        let slot = self.slot(kind);
        *slot = slot.saturating_sub(1);
    }

    /// All messages, whatever their type.
    pub fn total(&self) -> u64 {
        self.open + self.update + self.notification + self.keepalive + self.route_refresh
    }
}

impl std::ops::Add for MessageCounts {
    type Output = Self;

    fn add(self, o: Self) -> Self {
        Self {
            open: self.open + o.open,
            update: self.update + o.update,
            notification: self.notification + o.notification,
            keepalive: self.keepalive + o.keepalive,
            route_refresh: self.route_refresh + o.route_refresh,
        }
    }
}

/// What a session sent and received over its life (every connection).
///
/// "Sent" means handed to the driver by `poll_transmit`: a driver that
/// drops output it took but never wrote (its connection closed) gives the
/// count back with `Session::take_back_unsent`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub sent: MessageCounts,
    pub received: MessageCounts,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// How many times the session reached Established.
    pub times_established: u64,
}

impl SessionStats {
    /// Takes whole messages (`unsent`, as cut by
    /// [`crate::wire::header::message_end`]) back out of the sent counts.
    pub(crate) fn take_back_unsent(&mut self, unsent: &[u8]) {
        for (kind, len) in crate::wire::header::messages(unsent) {
            self.sent.take_back(kind);
            self.bytes_sent = self.bytes_sent.saturating_sub(len as u64);
        }
    }
}

impl std::ops::Add for SessionStats {
    type Output = Self;

    /// Sums the stats of two sessions (the two connections of a collision).
    fn add(self, o: Self) -> Self {
        Self {
            sent: self.sent + o.sent,
            received: self.received + o.received,
            bytes_sent: self.bytes_sent + o.bytes_sent,
            bytes_received: self.bytes_received + o.bytes_received,
            times_established: self.times_established + o.times_established,
        }
    }
}
