//! Protocol code points as types (IANA registries): one enum per family,
//! each with an `Unknown` variant so that a value this crate does not know
//! survives a decode and an encode unchanged, and can still be logged.
//!
//! Every enum converts from and into its wire integer (`From<u8>` /
//! `From<Enum> for u8`, or `u16` for AFIs). A known value always converts to
//! its named variant; `Unknown(n)` holds only values without a name.

/// Declares a code point enum with an `Unknown` catch-all and both
/// conversions, so the list of names and values is written once.
macro_rules! code_point {
    (
        $(#[$attr:meta])*
        pub enum $name:ident($repr:ty) {
            $( $(#[$vattr:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A value without a name here, kept as it came.
            Unknown($repr),
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

code_point! {
    /// Address Family Identifiers (IANA "Address Family Numbers").
    pub enum Afi(u16) {
        Ipv4 = 1,
        Ipv6 = 2,
    }
}

code_point! {
    /// Subsequent Address Family Identifiers (RFC 4760).
    pub enum Safi(u8) {
        Unicast = 1,
        Multicast = 2,
    }
}

code_point! {
    /// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 for confederations).
    pub enum AsSegmentType(u8) {
        AsSet = 1,
        AsSequence = 2,
        AsConfedSequence = 3,
        AsConfedSet = 4,
    }
}

code_point! {
    /// ROUTE-REFRESH message subtypes (RFC 7313 §3.2).
    pub enum RouteRefreshSubtype(u8) {
        /// A plain request to re-send a family (RFC 2918).
        Request = 0,
        /// Beginning of a re-sent table (BoRR).
        BeginOfRouteRefresh = 1,
        /// End of a re-sent table (EoRR).
        EndOfRouteRefresh = 2,
    }
}

code_point! {
    /// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313).
    pub enum ErrorCode(u8) {
        MessageHeader = 1,
        OpenMessage = 2,
        UpdateMessage = 3,
        HoldTimerExpired = 4,
        /// RFC 6608 gives it subcodes.
        FiniteStateMachine = 5,
        Cease = 6,
        RouteRefreshMessage = 7,
    }
}

code_point! {
    /// Message Header Error subcodes (RFC 4271 §6.1).
    pub enum MessageHeaderSubcode(u8) {
        Unspecific = 0,
        ConnectionNotSynchronized = 1,
        BadMessageLength = 2,
        BadMessageType = 3,
    }
}

code_point! {
    /// OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492).
    pub enum OpenSubcode(u8) {
        Unspecific = 0,
        UnsupportedVersionNumber = 1,
        BadPeerAs = 2,
        BadBgpIdentifier = 3,
        UnsupportedOptionalParameter = 4,
        UnacceptableHoldTime = 6,
        UnsupportedCapability = 7,
    }
}

code_point! {
    /// UPDATE Message Error subcodes (RFC 4271 §6.3).
    pub enum UpdateSubcode(u8) {
        Unspecific = 0,
        MalformedAttributeList = 1,
        UnrecognizedWellKnownAttribute = 2,
        MissingWellKnownAttribute = 3,
        AttributeFlagsError = 4,
        AttributeLengthError = 5,
        InvalidOriginAttribute = 6,
        InvalidNextHopAttribute = 8,
        OptionalAttributeError = 9,
        InvalidNetworkField = 10,
        MalformedAsPath = 11,
    }
}

code_point! {
    /// Finite State Machine Error subcodes (RFC 6608): which state the
    /// unexpected message arrived in.
    pub enum FsmSubcode(u8) {
        Unspecified = 0,
        UnexpectedMessageInOpenSent = 1,
        UnexpectedMessageInOpenConfirm = 2,
        UnexpectedMessageInEstablished = 3,
    }
}

code_point! {
    /// Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
    pub enum CeaseSubcode(u8) {
        Unspecific = 0,
        MaximumPrefixesReached = 1,
        AdministrativeShutdown = 2,
        PeerDeconfigured = 3,
        AdministrativeReset = 4,
        ConnectionRejected = 5,
        OtherConfigurationChange = 6,
        ConnectionCollisionResolution = 7,
        OutOfResources = 8,
        HardReset = 9,
        BfdDown = 10,
    }
}

code_point! {
    /// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
    pub enum RouteRefreshSubcode(u8) {
        Reserved = 0,
        InvalidMessageLength = 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_survives_a_round_trip() {
        for v in 0..=u8::MAX {
            assert_eq!(u8::from(CeaseSubcode::from(v)), v);
            assert_eq!(u8::from(ErrorCode::from(v)), v);
            assert_eq!(u8::from(Safi::from(v)), v);
            assert_eq!(u8::from(RouteRefreshSubtype::from(v)), v);
        }
        for v in [0, 1, 2, 25, u16::MAX] {
            assert_eq!(u16::from(Afi::from(v)), v);
        }
        assert_eq!(Afi::from(2), Afi::Ipv6);
        assert_eq!(CeaseSubcode::from(7), CeaseSubcode::ConnectionCollisionResolution);
        assert_eq!(FsmSubcode::from(9), FsmSubcode::Unknown(9));
        assert_eq!(u8::from(UpdateSubcode::MalformedAsPath), 11);
    }
}
