//! The registry of resources the server knows: their group, version, kind,
//! plural, scope and whether they have a `/status` subresource.

use std::collections::BTreeMap;

/// A resource as the URL names it: group (empty for core), version, plural.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId {
    /// API group, empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `endpointslices`.
    pub plural: String,
}

/// One kind the server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceKind {
    /// API group, empty for the core group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind, e.g. `EndpointSlice`.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether `status` is a subresource: writes to the main resource keep
    /// the stored status and writes to `/status` change only status.
    pub status_subresource: bool,
}

impl ResourceKind {
    /// A namespaced kind without a status subresource.
    #[must_use]
    pub fn namespaced(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced: true,
            status_subresource: false,
        }
    }

    /// A cluster-scoped kind without a status subresource.
    #[must_use]
    pub fn cluster(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self { namespaced: false, ..Self::namespaced(group, version, kind, plural) }
    }

    /// The same kind with a `/status` subresource.
    #[must_use]
    pub fn with_status(self) -> Self {
        Self { status_subresource: true, ..self }
    }

    /// `group/version`, or `version` for the core group.
    #[must_use]
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The resource's URL identity.
    #[must_use]
    pub fn id(&self) -> ResourceId {
        ResourceId { group: self.group.clone(), version: self.version.clone(), plural: self.plural.clone() }
    }
}

/// Known kinds by resource and by (apiVersion, kind).
#[derive(Debug, Clone)]
pub struct Registry {
    by_id: BTreeMap<ResourceId, ResourceKind>,
}

impl Default for Registry {
    /// The built-in kinds the load balancer reads and writes.
    fn default() -> Self {
        let mut registry = Self { by_id: BTreeMap::new() };
        for kind in [
            ResourceKind::namespaced("", "v1", "Service", "services").with_status(),
            ResourceKind::namespaced("", "v1", "Endpoints", "endpoints"),
            ResourceKind::cluster("", "v1", "Namespace", "namespaces").with_status(),
            ResourceKind::cluster("", "v1", "Node", "nodes").with_status(),
            ResourceKind::namespaced("", "v1", "Pod", "pods").with_status(),
            ResourceKind::namespaced("", "v1", "Secret", "secrets"),
            ResourceKind::namespaced("", "v1", "ConfigMap", "configmaps"),
            ResourceKind::namespaced("", "v1", "Event", "events"),
            ResourceKind::namespaced("events.k8s.io", "v1", "Event", "events"),
            ResourceKind::namespaced("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
            ResourceKind::namespaced("coordination.k8s.io", "v1", "Lease", "leases"),
        ] {
            registry.register(kind);
        }
        registry
    }
}

impl Registry {
    /// Adds or replaces a kind.
    pub fn register(&mut self, kind: ResourceKind) {
        self.by_id.insert(kind.id(), kind);
    }

    /// The kind served at `group/version/plural`.
    #[must_use]
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceKind> {
        self.by_id.get(&ResourceId { group: group.to_owned(), version: version.to_owned(), plural: plural.to_owned() })
    }

    /// The kind with this apiVersion (`group/version` or `v1`) and kind name.
    #[must_use]
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceKind> {
        self.by_id.values().find(|k| k.api_version() == api_version && k.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_resolve_by_path_and_by_kind() {
        let r = Registry::default();
        assert!(r.get("", "v1", "pods").is_some_and(|k| k.namespaced && k.status_subresource));
        assert!(r.get("", "v1", "nodes").is_some_and(|k| !k.namespaced));
        assert_eq!(r.by_kind("coordination.k8s.io/v1", "Lease").map(|k| k.plural.as_str()), Some("leases"));
        assert!(r.by_kind("v1", "Lease").is_none());
    }
}
