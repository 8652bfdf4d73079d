//! What each component may do on the Kubernetes API, declared once.
//!
//! `deploy/rbac.yaml` is generated from these declarations (a test fails
//! when it is stale), and the controller's and speaker's tests check every
//! request they make against them: a component that starts using another
//! verb fails its tests until the grant is added here, and a grant nobody
//! needs is visible in one place.
//!
//! Least privilege: cluster-wide only what lives in every namespace
//! (Services, their Events, EndpointSlices, Nodes, Namespaces); everything
//! else in the load balancer's own namespace. The speaker writes nothing
//! but its status objects, its ConfigurationState and Events.

use std::fmt::Write as _;

/// One RBAC rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// API group (`""`: core).
    pub group: &'static str,
    /// Plurals, `/status` for the status subresource.
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Only these objects (empty: any).
    pub names: &'static [&'static str],
    /// Why the component needs it (a comment in the manifest).
    pub why: &'static str,
}

/// A component's grants: a ClusterRole and a Role in its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// `controller` or `speaker`: the ServiceAccount and the roles are `lb-<component>`.
    pub component: &'static str,
    pub cluster: &'static [Grant],
    pub namespace: &'static [Grant],
}

const WATCH: &[&str] = &["list", "watch"];
const CONFIG_RESOURCES: &[&str] =
    &["ipaddresspools", "l2advertisements", "bgpadvertisements", "bgppeers", "communities", "bfdprofiles"];
/// Server-side apply that creates the object is authorized as `create` too.
const APPLY: &[&str] = &["get", "create", "patch"];

const EVENTS: Grant = Grant {
    group: "events.k8s.io",
    resources: &["events"],
    verbs: &["create", "patch"],
    names: &[],
    why: "Events on Services and configuration objects (a repeat patches the first)",
};

const CONFIG: Grant =
    Grant { group: "metallb.io", resources: CONFIG_RESOURCES, verbs: WATCH, names: &[], why: "the configuration" };

const LEGACY_CONFIGMAP: Grant = Grant {
    group: "",
    resources: &["configmaps"],
    verbs: WATCH,
    names: &[],
    why: "the legacy ConfigMap `config` (field selector)",
};

/// `lb controller`.
pub const CONTROLLER: Permissions = Permissions {
    component: "controller",
    cluster: &[
        Grant {
            group: "",
            resources: &["services"],
            verbs: &["list", "watch", "patch"],
            names: &[],
            why: "Services to allocate for; the pool annotation",
        },
        Grant {
            group: "",
            resources: &["services/status"],
            verbs: &["patch"],
            names: &[],
            why: "status.loadBalancer.ingress",
        },
        Grant {
            group: "",
            resources: &["namespaces"],
            verbs: WATCH,
            names: &[],
            why: "namespace labels for serviceAllocation.namespaceSelectors",
        },
        EVENTS,
    ],
    namespace: &[
        CONFIG,
        LEGACY_CONFIGMAP,
        Grant {
            group: "metallb.io",
            resources: &["ipaddresspools/status"],
            verbs: &["patch"],
            names: &[],
            why: "pool counts",
        },
        Grant {
            group: "metallb.io",
            resources: &["configurationstates"],
            verbs: APPLY,
            names: &[],
            why: "ConfigurationState `controller`, created by server-side apply",
        },
        Grant {
            group: "metallb.io",
            resources: &["configurationstates/status"],
            verbs: &["patch"],
            names: &[],
            why: "its result",
        },
        Grant {
            group: "coordination.k8s.io",
            resources: &["leases"],
            verbs: &["get", "create", "update"],
            names: &[],
            why: "leader election (Lease `lb-controller`)",
        },
        Grant {
            group: "",
            resources: &["secrets"],
            verbs: &["get", "patch"],
            names: &["memberlist"],
            why: "a random gossip key in the memberlist Secret when it has none",
        },
    ],
};

/// `lb speaker`.
pub const SPEAKER: Permissions = Permissions {
    component: "speaker",
    cluster: &[
        Grant {
            group: "",
            resources: &["services", "nodes"],
            verbs: WATCH,
            names: &[],
            why: "what to announce (status IPs) and where (node labels, addresses)",
        },
        Grant {
            group: "discovery.k8s.io",
            resources: &["endpointslices"],
            verbs: WATCH,
            names: &[],
            why: "serving endpoints",
        },
        EVENTS,
    ],
    namespace: &[
        CONFIG,
        LEGACY_CONFIGMAP,
        Grant {
            group: "",
            resources: &["pods"],
            verbs: WATCH,
            names: &[],
            why: "the speaker Pods (label selector): gossip seeds, the owner of status objects",
        },
        Grant {
            group: "",
            resources: &["secrets"],
            verbs: WATCH,
            names: &[],
            why: "the memberlist Secret and the peers' password Secrets, each by name (field selector)",
        },
        Grant {
            group: "metallb.io",
            resources: &["servicel2statuses", "servicebgpstatuses"],
            verbs: &["list", "watch", "create", "patch", "delete"],
            names: &[],
            why: "this node's status objects (label selector), created by server-side apply",
        },
        Grant {
            group: "metallb.io",
            resources: &["servicel2statuses/status", "servicebgpstatuses/status"],
            verbs: &["patch"],
            names: &[],
            why: "what they say",
        },
        Grant {
            group: "metallb.io",
            resources: &["configurationstates"],
            verbs: APPLY,
            names: &[],
            why: "ConfigurationState `speaker-<node>`, created by server-side apply",
        },
        Grant {
            group: "metallb.io",
            resources: &["configurationstates/status"],
            verbs: &["patch"],
            names: &[],
            why: "its result",
        },
    ],
};

impl Permissions {
    /// Whether a request is granted: `namespace` is the request's (`None`:
    /// cluster-wide or a cluster-scoped kind), `home` the load balancer's.
    pub fn allows(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        home: &str,
    ) -> bool {
        let matches = |g: &Grant| {
            g.group == group
                && g.resources.contains(&resource)
                && g.verbs.contains(&verb)
                && (g.names.is_empty() || name.is_some_and(|n| g.names.contains(&n)))
        };
        self.cluster.iter().any(matches) || (namespace == Some(home) && self.namespace.iter().any(matches))
    }

    /// The grants no request in `used` (verb, group, resource) needed:
    /// `verb group/resource` each. A `create` in a grant that also has
    /// `patch` counts as used by a patch, as a server-side apply that
    /// creates its object is authorized as `create`. Tests run a component
    /// through its life and expect none: nothing is granted beyond need.
    pub fn unused<'a>(&self, used: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Vec<String> {
        let used: std::collections::BTreeSet<(&str, &str, &str)> = used.into_iter().collect();
        let mut unused = Vec::new();
        for grant in self.cluster.iter().chain(self.namespace) {
            for resource in grant.resources {
                for verb in grant.verbs {
                    let by = |v: &'a str| used.contains(&(v, grant.group, *resource));
                    let applied = *verb == "create" && grant.verbs.contains(&"patch") && by("patch");
                    if !by(verb) && !applied {
                        unused.push(format!("{verb} {}/{resource}", grant.group));
                    }
                }
            }
        }
        unused
    }

    /// The ServiceAccount, ClusterRole, ClusterRoleBinding, Role and
    /// RoleBinding of this component in `namespace`, as YAML.
    pub fn manifests(&self, namespace: &str) -> String {
        let name = format!("lb-{}", self.component);
        let mut out = String::new();
        let _ = write!(
            out,
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    app.kubernetes.io/name: lb\n    app.kubernetes.io/component: {c}\n",
            c = self.component
        );
        for (kind, grants, scoped) in [("ClusterRole", self.cluster, false), ("Role", self.namespace, true)] {
            let meta = if scoped {
                format!("  name: {name}\n  namespace: {namespace}\n")
            } else {
                format!("  name: {name}\n")
            };
            let _ =
                write!(out, "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n{meta}rules:\n");
            for g in grants {
                let _ = writeln!(out, "  # {}", g.why);
                let _ = writeln!(out, "  - apiGroups: [\"{}\"]", g.group);
                let _ = writeln!(out, "    resources: [{}]", g.resources.join(", "));
                if !g.names.is_empty() {
                    let _ = writeln!(out, "    resourceNames: [{}]", g.names.join(", "));
                }
                let _ = writeln!(out, "    verbs: [{}]", g.verbs.join(", "));
            }
            let _ = write!(
                out,
                "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}Binding\nmetadata:\n{meta}roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: {kind}\n  name: {name}\nsubjects:\n  - kind: ServiceAccount\n    name: {name}\n    namespace: {namespace}\n"
            );
        }
        out
    }
}

/// `deploy/rbac.yaml`: both components in `namespace`.
pub fn manifests(namespace: &str) -> String {
    format!(
        "# Generated from lb-k8s/src/rbac.rs (LB_UPDATE_DEPLOY=1 cargo test -p lb-k8s --test deploy):\n# edit the declarations there, not this file.\n{}---\n{}",
        CONTROLLER.manifests(namespace),
        SPEAKER.manifests(namespace)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_grants_hold_in_the_home_namespace_only_and_names_restrict() {
        let ns = Some("metallb-system");
        assert!(CONTROLLER.allows("watch", "metallb.io", "ipaddresspools", ns, None, "metallb-system"));
        assert!(!CONTROLLER.allows("watch", "metallb.io", "ipaddresspools", Some("shop"), None, "metallb-system"));
        assert!(CONTROLLER.allows("patch", "", "services/status", Some("shop"), Some("web"), "metallb-system"));
        assert!(CONTROLLER.allows("patch", "", "secrets", ns, Some("memberlist"), "metallb-system"));
        assert!(!CONTROLLER.allows("patch", "", "secrets", ns, Some("other"), "metallb-system"));
        assert!(!SPEAKER.allows("patch", "", "services/status", Some("shop"), Some("web"), "metallb-system"));
        assert!(!SPEAKER.allows("get", "", "secrets", ns, Some("memberlist"), "metallb-system"), "watch only");
    }
}
