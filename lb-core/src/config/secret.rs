//! Secrets that `BGPPeer.spec.passwordSecret` refers to: the TCP MD5
//! password, by namespace and name.
//!
//! The values come from wherever the Secrets are kept (configuration files
//! read by [`super::load`], the Kubernetes API read by a driver); resolving a
//! reference is the same pure lookup either way.

use std::collections::BTreeMap;

use super::crd::SecretReference;

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
