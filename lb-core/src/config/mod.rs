//! MetalLB's configuration, in either of its forms, read from YAML files
//! and validated into one model.
//!
//! - [`crd`]: the `metallb.io` resources as written;
//! - [`legacy`]: the legacy ConfigMap, converted to those resources;
//! - [`build`]: validation (every error at once) and defaults, into [`Config`];
//! - [`error`]: errors that name file, object and field.
//!
//! ```
//! let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: web}\nspec:\n  addresses: [192.0.2.0/28]\n";
//! let loaded = lb_core::config::load(&[("pools.yaml", yaml)]).unwrap();
//! assert_eq!(loaded.config.pools[0].name, "web");
//! ```

pub mod build;
pub mod crd;
pub mod decode;
pub mod error;
pub mod legacy;
pub mod name;
pub mod secret;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use self::crd::{Resource, SecretReference};
pub use self::decode::Origin;
pub use self::error::{ConfigError, ConfigErrorKind};
pub use self::secret::{FileSecrets, Secrets};
use crate::addr::{AddressBlock, Family, is_buggy_ip};
use crate::community::Community;
use crate::manifest;
use crate::selector::{LabelSelector, Labels, any_matches};
use crate::service::Service;

/// The whole validated configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Sorted by name.
    pub pools: Vec<Pool>,
    pub l2_advertisements: Vec<L2Advertisement>,
    pub bgp_advertisements: Vec<BgpAdvertisement>,
    pub peers: Vec<BgpPeer>,
    pub bfd_profiles: Vec<BfdProfile>,
    /// Community aliases by name.
    pub communities: BTreeMap<String, Community>,
}

impl Config {
    /// Whether an advertisement selects Services by label: a speaker that
    /// keeps every Service of a cluster needs their labels only then.
    pub fn advertisements_select_services(&self) -> bool {
        self.l2_advertisements.iter().any(|a| !a.service_selectors.is_empty())
            || self.bgp_advertisements.iter().any(|a| !a.service_selectors.is_empty())
    }

    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.binary_search_by(|p| p.name.as_str().cmp(name)).ok().map(|i| &self.pools[i])
    }

    /// The pool an address belongs to (pools never overlap).
    pub fn pool_of(&self, ip: IpAddr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.contains(ip))
    }
}

/// An `IPAddressPool`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    pub labels: Labels,
    /// In the order written: allocation hands out addresses in this order.
    pub blocks: Vec<AddressBlock>,
    pub auto_assign: bool,
    pub avoid_buggy_ips: bool,
    pub allocation: Option<ServiceAllocation>,
}

impl Pool {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    /// Whether `ip` may be handed out: inside, and not skipped by `avoidBuggyIPs`.
    pub fn is_usable(&self, ip: IpAddr) -> bool {
        self.contains(ip) && !(self.avoid_buggy_ips && is_buggy_ip(ip))
    }

    /// Number of addresses of `family` that may be handed out.
    pub fn total(&self, family: Family) -> u128 {
        self.blocks
            .iter()
            .filter(|b| b.family() == family)
            .map(|b| b.usable(self.avoid_buggy_ips))
            .fold(0u128, u128::saturating_add)
    }

    /// [`Self::total`] as exact decimal text: all of IPv6 is 2^128
    /// addresses, one more than [`Self::total`]'s `u128` holds (pools never
    /// overlap, so a pool with `::/0` has no other IPv6 block).
    pub fn total_text(&self, family: Family) -> String {
        if family == Family::V6 && self.blocks.iter().any(|b| b.family() == family && b.is_whole_family()) {
            return ALL_OF_IPV6.to_string();
        }
        self.total(family).to_string()
    }

    pub fn has_family(&self, family: Family) -> bool {
        self.blocks.iter().any(|b| b.family() == family)
    }
}

/// 2^128, the number of IPv6 addresses, as text (no integer type here holds it).
pub const ALL_OF_IPV6: &str = "340282366920938463463374607431768211456";

/// `IPAddressPool.spec.serviceAllocation`: which Services a pool serves, and how eagerly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceAllocation {
    /// Lower first; unset after every set one.
    pub priority: Option<i32>,
    pub namespaces: Vec<String>,
    pub namespace_selectors: Vec<LabelSelector>,
    pub service_selectors: Vec<LabelSelector>,
}

impl ServiceAllocation {
    /// Every condition given must hold: the namespace is listed (if a list is
    /// given), matches a namespace selector (if any are given), and the
    /// Service matches a service selector (if any are given).
    pub fn matches(&self, service: &Service, namespace_labels: &Labels) -> bool {
        (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == service.namespace()))
            && any_matches(&self.namespace_selectors, namespace_labels)
            && any_matches(&self.service_selectors, &service.labels)
    }
}

/// An `L2Advertisement`.
#[derive(Debug, Clone, PartialEq)]
pub struct L2Advertisement {
    pub name: String,
    /// Names of the pools it applies to, resolved from names and selectors.
    pub pools: Vec<String>,
    pub node_selectors: Vec<LabelSelector>,
    pub interfaces: Vec<String>,
    /// The Services it applies to; all when empty. As in MetalLB, a Service
    /// selected this way cannot share its IP (`allow-shared-ip`).
    pub service_selectors: Vec<LabelSelector>,
    /// Which nodes to prefer as an IP's announcer.
    pub preferred_node_selectors: Vec<PreferredNodeSelector>,
}

/// A weighted preference for nodes, as Kubernetes' preferred scheduling
/// terms: a node's score is the sum of the weights of the terms it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferredNodeSelector {
    /// 1-100.
    pub weight: u8,
    pub preference: LabelSelector,
}

/// A `BGPAdvertisement`.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpAdvertisement {
    pub name: String,
    pub aggregation_length: u8,
    pub aggregation_length_v6: u8,
    pub local_pref: Option<u32>,
    /// Aliases resolved, sorted, without duplicates.
    pub communities: Vec<Community>,
    /// Names of the pools it applies to, resolved from names and selectors.
    pub pools: Vec<String>,
    pub node_selectors: Vec<LabelSelector>,
    /// Names of the BGPPeers it goes to; empty means all.
    pub peers: Vec<String>,
    pub service_selectors: Vec<LabelSelector>,
}

/// How the peer's ASN is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAsn {
    Fixed(u32),
    /// `dynamicASN: internal`: whatever the peer says, as long as it is ours.
    Internal,
    /// `dynamicASN: external`: whatever the peer says, as long as it is not ours.
    External,
}

/// The TCP MD5 key of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    Plain(String),
    Secret(SecretReference),
}

/// A `BGPPeer`, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpPeer {
    pub name: String,
    pub my_asn: u32,
    /// `localASN` (MetalLB 0.16): the AS this one session speaks as (in
    /// OPEN and AS_PATH), where the node's `myASN` is not the one the
    /// router expects. Whether the session is iBGP or eBGP is then decided
    /// between it and the peer's AS; see [`BgpPeer::session_asn`].
    pub local_asn: Option<u32>,
    pub peer_asn: PeerAsn,
    pub address: Option<IpAddr>,
    pub interface: Option<String>,
    pub source_address: Option<IpAddr>,
    pub port: u16,
    pub hold_time: Duration,
    pub keepalive_time: Duration,
    pub connect_time: Option<Duration>,
    pub router_id: Option<Ipv4Addr>,
    pub node_selectors: Vec<LabelSelector>,
    pub password: Option<Password>,
    pub bfd_profile: Option<String>,
    pub ebgp_multihop: bool,
    pub graceful_restart: bool,
    pub vrf: Option<String>,
    pub disable_mp: bool,
    /// `dualStackAddressFamily`: both families' routes over this one session.
    pub dual_stack_address_family: bool,
}

impl BgpPeer {
    /// The AS the session speaks as: `localASN` when set, else `myASN`.
    pub fn session_asn(&self) -> u32 {
        self.local_asn.unwrap_or(self.my_asn)
    }

    /// iBGP when the peer's AS is the one the session speaks as
    /// ([`Self::session_asn`]), so `localASN` decides it when set.
    pub fn is_ibgp(&self) -> bool {
        match self.peer_asn {
            PeerAsn::Fixed(asn) => asn == self.session_asn(),
            PeerAsn::Internal => true,
            PeerAsn::External => false,
        }
    }
}

/// A `BFDProfile`, with defaults applied; intervals in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdProfile {
    pub name: String,
    pub receive_interval: u32,
    pub transmit_interval: u32,
    pub detect_multiplier: u32,
    pub echo_interval: u32,
    pub echo_mode: bool,
    pub passive_mode: bool,
    pub minimum_ttl: u32,
}

/// A configuration object as read, before validation, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedResource {
    pub origin: Origin,
    pub resource: Resource,
}

/// What [`load`] produced: the model and the resources it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub resources: Vec<SourcedResource>,
    /// Objects in the files that are not MetalLB configuration. Secrets
    /// are listed here too (as they always were), and read into `secrets`.
    pub skipped: Vec<Skipped>,
    /// Passwords of the Secrets in the files, for `passwordSecret`.
    pub secrets: Secrets,
    /// `passwordSecret` references that could not be checked because the
    /// files give no Secret at all (they are kept in the cluster).
    pub unchecked_secrets: Vec<UncheckedSecret>,
}

/// A `passwordSecret` whose Secret was not given, so neither its presence
/// nor its password's length could be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncheckedSecret {
    pub file: String,
    /// `BGPPeer/name`.
    pub object: String,
    /// The field that names it (`spec.passwordSecret`).
    pub field: String,
    /// `namespace/name`.
    pub secret: String,
}

/// An object that is not MetalLB configuration, left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    /// `Kind/name`.
    pub object: String,
}

/// Reads resources from YAML texts (`(file name, text)`), without validating them.
pub fn read(files: &[(&str, &str)], errors: &mut Vec<ConfigError>) -> (Vec<SourcedResource>, Vec<Skipped>) {
    let (resources, skipped, _) = read_with_secrets(files, errors);
    (resources, skipped)
}

/// [`read`], and the Secrets the files give.
pub fn read_with_secrets(
    files: &[(&str, &str)],
    errors: &mut Vec<ConfigError>,
) -> (Vec<SourcedResource>, Vec<Skipped>, FileSecrets) {
    let read = read_files(files, errors);
    (read.resources, read.skipped, read.secrets)
}

/// What the files hold, as read.
struct Read {
    resources: Vec<SourcedResource>,
    skipped: Vec<Skipped>,
    secrets: FileSecrets,
    /// Whether a legacy ConfigMap was found: one with an empty `config` is
    /// an explicit configuration of nothing, not a missing one.
    legacy_configmap: bool,
}

fn read_files(files: &[(&str, &str)], errors: &mut Vec<ConfigError>) -> Read {
    let mut read =
        Read { resources: Vec::new(), skipped: Vec::new(), secrets: FileSecrets::default(), legacy_configmap: false };
    for (file, text) in files {
        let file: Arc<str> = Arc::from(*file);
        let docs = match manifest::documents(text) {
            Ok(d) => d,
            Err(e) => {
                let message = match e {
                    manifest::ManifestError::Yaml(m) => m,
                    other => other.to_string(),
                };
                errors.push(ConfigError {
                    file: file.to_string(),
                    object: "-".into(),
                    field: "-".into(),
                    kind: ConfigErrorKind::Yaml(message),
                });
                continue;
            }
        };
        for (index, doc) in docs.iter().enumerate() {
            read_document(&file, index, doc, &mut read, errors);
        }
    }
    read
}

fn read_document(file: &Arc<str>, index: usize, doc: &Value, read: &mut Read, errors: &mut Vec<ConfigError>) {
    let Read { resources, skipped, secrets, legacy_configmap } = read;
    let (Some(api_version), Some(kind)) =
        (doc.get("apiVersion").and_then(Value::as_str), doc.get("kind").and_then(Value::as_str))
    else {
        errors.push(ConfigError {
            file: file.to_string(),
            object: format!("document[{index}]"),
            field: "-".into(),
            kind: ConfigErrorKind::NotAnObject,
        });
        return;
    };
    let name = manifest::name(doc).unwrap_or("").to_string();
    let namespace = doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("metallb-system");
    // An overlong name is shown by its start: enough to find it.
    let shown = if name.chars().count() > name::MAX_SUBDOMAIN { name::shortened(&name) } else { name.clone() };
    let origin = Origin { file: file.clone(), object: format!("{kind}/{shown}"), legacy: None };

    // MetalLB's ConfigMap is `metallb-system/config` unless renamed; other
    // ConfigMaps with a `config` key belong to other programs.
    let legacy_candidate = name == "config" || namespace == "metallb-system";
    if kind == "ConfigMap" && api_version == "v1" && legacy_candidate {
        match doc.pointer("/data/config") {
            Some(Value::String(text)) => {
                *legacy_configmap = true;
                for (origin, resource) in legacy::convert(file, &name, namespace, text, errors) {
                    resources.push(SourcedResource { origin, resource });
                }
            }
            Some(_) => errors.push(origin.error("data.config", ConfigErrorKind::Decode("must be a string".into()))),
            None => skipped.push(Skipped { file: file.to_string(), object: origin.object }),
        }
        return;
    }
    if kind == "Secret" && api_version == "v1" {
        secret::read_secret(doc, &origin, secrets, errors);
        skipped.push(Skipped { file: file.to_string(), object: origin.object });
        return;
    }
    // The metallb-operator's own object, found beside pools in real
    // repositories: it installs MetalLB, it does not configure it.
    if kind == "MetalLB" && api_version.starts_with("metallb.io/") {
        skipped.push(Skipped { file: file.to_string(), object: origin.object });
        return;
    }
    let Some(version) = api_version.strip_prefix("metallb.io/") else {
        // A MetalLB kind under another group is a typo, not someone else's object.
        if crd::KINDS.contains(&kind) {
            errors.push(origin.error(
                "apiVersion",
                ConfigErrorKind::UnknownKind { api_version: api_version.into(), kind: kind.into() },
            ));
        } else {
            skipped.push(Skipped { file: file.to_string(), object: origin.object });
        }
        return;
    };
    if name.is_empty() {
        errors.push(origin.error("metadata.name", ConfigErrorKind::MissingName));
    } else if let Err(e) = name::check_subdomain(&name) {
        // Every metallb.io kind is a custom resource: the API server
        // requires an RFC 1123 subdomain of all of them.
        errors.push(origin.error("metadata.name", ConfigErrorKind::InvalidName(e)));
    }
    if let Some(map) = doc.as_object() {
        for key in map.keys() {
            if !matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "spec" | "status") {
                errors.push(origin.error(key, ConfigErrorKind::UnknownField));
            }
        }
    }
    let empty = Value::Object(Default::default());
    let spec = doc.get("spec").filter(|s| !s.is_null()).unwrap_or(&empty);
    // Label values must be strings (`tier: "1"`, not `tier: 1`): dropping
    // labels that are not would make pool selectors silently match nothing.
    let labels = match doc.pointer("/metadata/labels") {
        Some(labels) if !labels.is_null() => {
            decode::decode(labels, "metadata.labels", &origin, errors).unwrap_or_default()
        }
        _ => Labels::new(),
    };
    let metadata = crd::Metadata { name, namespace: Some(namespace.to_string()), labels };
    macro_rules! object {
        ($variant:ident) => {
            decode(spec, "spec", &origin, errors).map(|spec| {
                Resource::$variant(crd::Object {
                    api_version: api_version.to_string(),
                    kind: kind.to_string(),
                    metadata,
                    spec,
                })
            })
        };
    }
    use decode::decode;
    if kind == "AddressPool" && matches!(version, "v1alpha1" | "v1beta1") {
        for (origin, resource) in legacy::address_pool(file, metadata, spec, errors) {
            resources.push(SourcedResource { origin, resource });
        }
        return;
    }
    let resource = match (kind, version) {
        ("IPAddressPool", "v1beta1") => object!(IpAddressPool),
        ("L2Advertisement", "v1beta1") => object!(L2Advertisement),
        ("BGPAdvertisement", "v1beta1") => object!(BgpAdvertisement),
        ("BGPPeer", "v1beta1" | "v1beta2") => {
            if version == "v1beta1"
                && let Some(map) = spec.as_object()
            {
                for key in map.keys().filter(|k| crd::BGP_PEER_V1BETA2_ONLY.contains(&k.as_str())) {
                    errors.push(origin.error(&format!("spec.{key}"), ConfigErrorKind::UnknownField));
                }
            }
            object!(BgpPeer)
        }
        ("Community", "v1beta1") => object!(Community),
        ("BFDProfile", "v1beta1") => object!(BfdProfile),
        _ => {
            errors.push(origin.error(
                "apiVersion",
                ConfigErrorKind::UnknownKind { api_version: api_version.into(), kind: kind.into() },
            ));
            None
        }
    };
    if let Some(resource) = resource {
        resources.push(SourcedResource { origin, resource });
    }
}

/// Reads and validates configuration files. Every error is reported, each
/// with its file, object and field; nothing is returned unless all is valid.
///
/// Secrets (`v1` `Secret`) in the files are read for `passwordSecret`: a
/// reference to a Secret the files do not give is an error when they give
/// any Secret, and is listed in [`Loaded::unchecked_secrets`] when they give
/// none (the Secrets are then in the cluster, out of reach of a pure check).
pub fn load(files: &[(&str, &str)]) -> Result<Loaded, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let read = read_files(files, &mut errors);
    let names: Vec<&str> = files.iter().map(|(file, _)| *file).collect();
    finish(read, &names, errors)
}

/// [`load`] for objects already parsed, as the Kubernetes API returns them
/// (JSON, or typed objects serialised to JSON): each `(source, object)`
/// gives the name to show as its file (`kubernetes`, `kubernetes:bgppeers`)
/// and the whole object with `apiVersion`, `kind`, `metadata` and `spec`.
///
/// The same objects written to files and given to [`load`] give the same
/// [`Config`]: both go through one reader and one validation. Fields the
/// API server adds to every object (`metadata.uid`, `resourceVersion`,
/// `managedFields`, an empty `status`) are not configuration and are ignored.
pub fn load_objects(objects: &[(&str, Value)]) -> Result<Loaded, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut read =
        Read { resources: Vec::new(), skipped: Vec::new(), secrets: FileSecrets::default(), legacy_configmap: false };
    let mut names: Vec<&str> = Vec::new();
    for (index, (source, object)) in objects.iter().enumerate() {
        if !names.contains(source) {
            names.push(source);
        }
        read_document(&Arc::from(*source), index, object, &mut read, &mut errors);
    }
    finish(read, &names, errors)
}

/// What [`load`] and [`load_objects`] share once the objects are read.
fn finish(read: Read, sources: &[&str], mut errors: Vec<ConfigError>) -> Result<Loaded, Vec<ConfigError>> {
    let Read { resources, skipped, secrets, legacy_configmap } = read;
    // Nothing to configure is never a valid "no pools": every caller
    // (check-config, plan, a reload) must refuse it alike. An explicit
    // configuration with no pools (a BGPPeer alone, an empty legacy
    // ConfigMap) is still one.
    if errors.is_empty() && resources.is_empty() && !legacy_configmap {
        errors.extend(no_configuration(sources, &skipped));
    }
    let config = build::build(&resources, &mut errors);
    let unchecked_secrets = build::check_secret_references(&resources, &secrets, &mut errors);
    if errors.is_empty() {
        Ok(Loaded { config, resources, skipped, secrets: secrets.secrets, unchecked_secrets })
    } else {
        Err(errors)
    }
}

/// One error per file, each saying what the file holds instead.
fn no_configuration(files: &[&str], skipped: &[Skipped]) -> Vec<ConfigError> {
    let error = |file: &str, found: String| ConfigError {
        file: file.to_string(),
        object: "-".into(),
        field: "-".into(),
        kind: ConfigErrorKind::NoConfiguration { found },
    };
    if files.is_empty() {
        return vec![error("-", String::new())];
    }
    files
        .iter()
        .map(|file| {
            let kinds = skipped.iter().filter(|s| s.file == *file).filter_map(|s| s.object.split_once('/'));
            error(file, manifest::found_objects(kinds.map(|(kind, _)| kind)))
        })
        .collect()
}
