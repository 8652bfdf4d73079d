//! Secrets that `BGPPeer.spec.passwordSecret` refers to: the TCP MD5
//! password, by namespace and name.
//!
//! The values come from wherever the Secrets are kept (configuration files
//! read by [`super::load`], the Kubernetes API read by a driver); resolving a
//! reference is the same pure lookup either way.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::crd::SecretReference;
use super::decode::Origin;
use super::error::{ConfigError, ConfigErrorKind};

/// Where a `passwordSecret` without a namespace is looked up: MetalLB's own
/// namespace, as MetalLB does.
pub const DEFAULT_NAMESPACE: &str = "metallb-system";

/// Passwords of Secrets by `namespace/name`, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    by_key: BTreeMap<String, Vec<u8>>,
}

impl Secrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the password of Secret `namespace/name`, replacing any earlier one.
    pub fn insert(&mut self, namespace: &str, name: &str, password: Vec<u8>) {
        self.by_key.insert(format!("{namespace}/{name}"), password);
    }

    /// The password a reference points to, if that Secret is known.
    pub fn get(&self, reference: &SecretReference) -> Option<&[u8]> {
        self.by_key.get(&key_of(reference)).map(Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// `(namespace/name, password)`, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.by_key.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// The namespace a reference means: its own, else [`DEFAULT_NAMESPACE`].
pub fn namespace_of(reference: &SecretReference) -> &str {
    reference.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(DEFAULT_NAMESPACE)
}

/// `namespace/name` of the Secret a reference points to.
pub fn key_of(reference: &SecretReference) -> String {
    format!("{}/{}", namespace_of(reference), reference.name)
}

/// Secret types whose `password` key is a TCP MD5 password: MetalLB asks
/// for `kubernetes.io/basic-auth`; an untyped Secret is `Opaque`.
pub const PASSWORD_TYPES: &[&str] = &["kubernetes.io/basic-auth", "Opaque"];

/// The Secrets found in configuration files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSecrets {
    /// Those whose password could be read.
    pub secrets: Secrets,
    /// `namespace/name` of those whose password could not be read (an error
    /// says why): a peer naming one is not told again that it is missing.
    pub unreadable: BTreeSet<String>,
    /// Whether the files give any Secret at all. When they give none, the
    /// Secrets are kept elsewhere (the cluster) and references cannot be
    /// checked; when they give some, a reference to another one is an error.
    pub any: bool,
}

/// Reads a `kind: Secret` document: its `password` key, from `stringData`
/// (which the API server merges over `data`) or base64 `data`. Secrets of
/// other types, or without that key, are not passwords and are left alone.
pub(crate) fn read_secret(doc: &Value, origin: &Origin, found: &mut FileSecrets, errors: &mut Vec<ConfigError>) {
    let secret_type = doc.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    found.any = true;
    if !PASSWORD_TYPES.contains(&secret_type) {
        return;
    }
    let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE);
    let key = format!("{namespace}/{name}");
    let not_a_string = || ConfigErrorKind::Decode("must be a string".into());
    if let Some(value) = doc.pointer("/stringData/password") {
        match value.as_str() {
            Some(p) => found.secrets.insert(namespace, name, p.as_bytes().to_vec()),
            None => {
                errors.push(origin.error("stringData.password", not_a_string()));
                found.unreadable.insert(key);
            }
        }
    } else if let Some(value) = doc.pointer("/data/password") {
        use base64::Engine as _;
        match value.as_str().map(|p| base64::engine::general_purpose::STANDARD.decode(p.trim())) {
            Some(Ok(p)) => found.secrets.insert(namespace, name, p),
            Some(Err(_)) => {
                errors.push(origin.error("data.password", ConfigErrorKind::SecretNotBase64));
                found.unreadable.insert(key);
            }
            None => {
                errors.push(origin.error("data.password", not_a_string()));
                found.unreadable.insert(key);
            }
        }
    }
}
