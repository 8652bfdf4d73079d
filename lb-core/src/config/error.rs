//! Configuration errors: where (file, object, field) and what.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::addr::AddressError;
use crate::community::CommunityError;
use crate::duration::DurationError;
use crate::selector::SelectorError;

/// One problem in the configuration, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the object came from.
    pub file: String,
    /// `Kind/name` of the object, or `-` for problems with the file itself.
    pub object: String,
    /// Path of the field inside the object (`spec.addresses[1]`), or `-`.
    pub field: String,
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    /// `FILE: KIND/NAME: FIELD: message`, one error per line. Control
    /// characters anywhere in it (a name, a value echoed back) are shown
    /// escaped: nothing read from a file may drive the terminal or forge a
    /// line of output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = format!("{}: {}: {}: {}", self.file, self.object, self.field, self.kind);
        f.write_str(&crate::manifest::escape(&line))
    }
}

impl std::error::Error for ConfigError {}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file is not YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A field has the wrong type.
    #[error("{0}")]
    Decode(String),
    /// A key the resource does not have: a typo would otherwise be ignored silently.
    #[error("unknown field")]
    UnknownField,
    /// A `metallb.io` kind or version this project does not know.
    #[error("unknown resource {api_version} {kind}")]
    UnknownKind { api_version: String, kind: String },
    /// The files hold no MetalLB configuration at all (`found` says what
    /// they hold instead, if anything): a mistaken file, never "no pools".
    #[error("no MetalLB configuration found (metallb.io resources or the legacy ConfigMap){}", if found.is_empty() { String::new() } else { format!("; found {found}") })]
    NoConfiguration { found: String },
    /// A document that is not a Kubernetes object.
    #[error("not a Kubernetes object: apiVersion and kind are required")]
    NotAnObject,
    /// A name the API server would refuse (and that could carry escapes to a terminal).
    #[error(transparent)]
    InvalidName(#[from] super::name::NameError),
    /// `metadata.name` is empty.
    #[error("missing name")]
    MissingName,
    /// Two objects of one kind with one name.
    #[error("duplicate {kind} name {name:?} (also defined in {other})")]
    DuplicateName { kind: String, name: String, other: String },
    /// A pool needs at least one address block.
    #[error("pool has no addresses")]
    NoAddresses,
    /// An address block could not be read.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// Two blocks (in one pool or two) share addresses.
    #[error("{block} overlaps {other_block} of pool {other_pool:?}")]
    Overlap { block: String, other_block: String, other_pool: String },
    /// `aggregationLength` beyond the family's width.
    #[error("aggregation length {length} is out of range for {family} (0-{max})")]
    AggregationOutOfRange { length: i64, family: &'static str, max: u8 },
    /// Aggregating to a shorter prefix than a block would announce addresses outside the pool.
    #[error("aggregation length {length} is shorter than /{mask} of {block} in pool {pool:?}")]
    AggregationShorterThanBlock { length: u8, mask: u8, block: String, pool: String },
    /// Aggregated routes would announce Services the selectors exclude.
    #[error("serviceSelectors need aggregationLength 32 and aggregationLengthV6 128, not {length}")]
    AggregationWithServiceSelectors { length: u8 },
    /// A community value that is not one.
    #[error(transparent)]
    Community(#[from] CommunityError),
    /// The same value twice in one list.
    #[error("{value:?} is listed twice")]
    Duplicate { value: String },
    /// Two Community aliases with one name.
    #[error("community alias {name:?} is defined twice")]
    DuplicateCommunityAlias { name: String },
    /// Two advertisements of one pool, same aggregation, same peers, different local preference.
    #[error(
        "local preference {local_pref} conflicts with {other_local_pref} of BGPAdvertisement/{other} for pool {pool:?} on the same peers"
    )]
    LocalPrefConflict { local_pref: u32, other_local_pref: u32, other: String, pool: String },
    /// ASN 0 is reserved.
    #[error("ASN 0 is not allowed")]
    AsnZero,
    /// Neither `peerASN` nor `dynamicASN`.
    #[error("one of peerASN and dynamicASN is required")]
    MissingPeerAsn,
    /// Both `peerASN` and `dynamicASN`.
    #[error("peerASN and dynamicASN are mutually exclusive")]
    PeerAsnAndDynamicAsn,
    /// `dynamicASN` is `internal` or `external`.
    #[error("dynamicASN must be internal or external, not {0:?}")]
    InvalidDynamicAsn(String),
    /// Multi-hop only makes sense for eBGP.
    #[error("ebgpMultiHop is set on an iBGP peer")]
    EbgpMultiHopOnIbgp,
    /// Neither address nor interface.
    #[error("one of peerAddress and interface is required")]
    MissingPeerAddress,
    /// Both address and interface.
    #[error("peerAddress and interface are mutually exclusive")]
    PeerAddressAndInterface,
    /// A field that should hold an IP address.
    #[error("{text:?} is not an IP address")]
    InvalidIp { text: String },
    /// The BGP identifier is an IPv4 address.
    #[error("{text:?} is not an IPv4 address")]
    InvalidRouterId { text: String },
    /// A Go duration that is not one.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// RFC 4271 §4.2: the hold time is 0 or at least 3 s. The exact value
    /// is kept: whole seconds would show `2.5s` as an acceptable-looking `2s`
    /// and `500ms` as `0s`, the very value that is allowed.
    #[error("hold time {hold:?} must be 0 or at least 3s")]
    HoldTimeTooShort { hold: Duration },
    /// Keepalives slower than the hold time would drop the session.
    #[error("keepalive time {keepalive:?} is above hold time {hold:?}")]
    KeepaliveAboveHold { keepalive: Duration, hold: Duration },
    /// Both `password` and `passwordSecret`.
    #[error("password and passwordSecret are mutually exclusive")]
    PasswordAndSecret,
    /// A number outside its allowed range.
    #[error("{value} is out of range ({min}-{max})")]
    OutOfRange { value: i64, min: i64, max: i64 },
    /// A TCP MD5 password longer than the kernel (and routers) accept.
    #[error("password of {len} bytes; TCP MD5 keys are at most {max}")]
    PasswordTooLong { len: usize, max: usize },
    /// The Secret a `passwordSecret` names holds a password that is too long.
    #[error("password of Secret {secret} is {len} bytes; TCP MD5 keys are at most {max}")]
    SecretPasswordTooLong { secret: String, len: usize, max: usize },
    /// `passwordSecret` names a Secret the files do not give (while they give others).
    #[error("Secret {secret} is not in the configuration files")]
    SecretNotFound { secret: String },
    /// A Secret's `data.password` is not base64, as `data` values must be.
    #[error("not valid base64")]
    SecretNotBase64,
    /// A network device name (interface, VRF) longer than Linux allows.
    #[error("device name of {len} bytes; Linux device names are at most {max}")]
    DeviceNameTooLong { len: usize, max: usize },
    /// A reference to a BFDProfile that does not exist.
    #[error("BFDProfile {0:?} does not exist")]
    UnknownBfdProfile(String),
    /// A label selector the API server would reject.
    #[error(transparent)]
    Selector(#[from] SelectorError),
    /// A string with a line break, which would corrupt generated router configuration.
    #[error("must not contain line breaks")]
    LineBreak,
    /// Legacy pools need `protocol`.
    #[error("protocol is required (layer2 or bgp)")]
    MissingProtocol,
    /// Legacy pools' `protocol` is `layer2` or `bgp`.
    #[error("unknown protocol {0:?} (layer2 or bgp)")]
    UnknownProtocol(String),
    /// Legacy layer 2 pools cannot carry BGP advertisements.
    #[error("bgp-advertisements are only allowed in bgp pools")]
    AdvertisementsOnLayer2Pool,
    /// BGP carries times as 16-bit seconds.
    #[error("{value:?} is out of range ({min:?}-{max:?})")]
    DurationOutOfRange { value: std::time::Duration, min: std::time::Duration, max: std::time::Duration },
    /// A field that must be set.
    #[error("required")]
    Required,
    /// An IP address in a position where only one family is allowed.
    #[error("{ip} is not an {expected} address")]
    WrongFamily { ip: IpAddr, expected: &'static str },
}
