//! The `metallb.io` custom resources as Rust types, the CRDs generated from
//! them (`deploy/crds.yaml`), and the way from cluster objects into
//! lb-core's configuration.
//!
//! - [`pools`] holds `IPAddressPool`;
//! - [`advertisements`] holds `L2Advertisement`, `BGPAdvertisement`;
//! - [`peers`] holds `BGPPeer` ([`peers::v1beta1`], [`peers::v1beta2`], stored), `BFDProfile`;
//! - [`communities`] holds `Community`;
//! - [`status`] holds `ServiceL2Status`, `ServiceBGPStatus`, `ConfigurationState`;
//! - [`schema`] holds the shared schema pieces and the structural checks.
//!
//! Field names, meanings and versions are MetalLB's. Field-level rules
//! (ranges, patterns, mutually exclusive fields, hold and keepalive times)
//! are in the schemas, as OpenAPI constraints and CEL rules, so the API
//! server refuses a bad object without a webhook; the same rules, and
//! those across objects, are lb-core's ([`lb_core::config::build`]).
//!
//! One model, two ways in: objects read from the cluster go through
//! [`load`], which hands them to [`lb_core::config::load_objects`], the
//! same reader and validation as files; the same objects in files give the
//! same [`lb_core::config::Config`].

pub mod advertisements;
pub mod communities;
pub mod peers;
pub mod pools;
pub mod schema;
pub mod status;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::core::crd::merge_crds;
use lb_core::config::{ConfigError, Loaded};
use serde::Serialize;
use serde_json::Value;

pub use self::advertisements::{BgpAdvertisement, BgpAdvertisementSpec, L2Advertisement, L2AdvertisementSpec};
pub use self::communities::{Community, CommunitySpec};
pub use self::peers::{BfdProfile, BfdProfileSpec};
pub use self::pools::{IpAddressPool, IpAddressPoolSpec};
pub use self::status::{ConfigurationState, ServiceBgpStatus, ServiceL2Status};

/// The name [`load`] gives cluster objects where files have a file name.
pub const SOURCE: &str = "kubernetes";

/// Every CRD of the `metallb.io` group this project serves, in a stable
/// order; `BGPPeer` with both versions, v1beta2 stored.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let peers = merge_crds(vec![peers::v1beta1::BgpPeer::crd(), peers::v1beta2::BgpPeer::crd()], "v1beta2")
        .expect("both BGPPeer versions have the same group, kind and scope");
    vec![
        spec_optional(BfdProfile::crd()),
        spec_optional(BgpAdvertisement::crd()),
        spec_optional(peers),
        spec_optional(Community::crd()),
        ConfigurationState::crd(),
        // The one kind whose `spec` MetalLB requires: a pool has addresses.
        IpAddressPool::crd(),
        spec_optional(L2Advertisement::crd()),
        spec_optional(ServiceBgpStatus::crd()),
        spec_optional(ServiceL2Status::crd()),
    ]
}

/// kube's derive requires `spec`; MetalLB's kinds (but `IPAddressPool`) do
/// not: an `L2Advertisement` without one announces every pool.
fn spec_optional(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut())
            && let Some(required) = schema.required.as_mut()
        {
            required.retain(|field| field != "spec");
            if required.is_empty() {
                schema.required = None;
            }
        }
    }
    crd
}

/// [`crds`] as one YAML stream, the text of `deploy/crds.yaml`.
pub fn crds_yaml() -> String {
    let mut out = String::from(
        "# Generated from lb-k8s/src/crds by `LB_UPDATE_CRDS=1 cargo test -p lb-k8s --test crds`; do not edit.\n",
    );
    for crd in crds() {
        out.push_str("---\n");
        let value = whole_numbers(serde_json::to_value(&crd).expect("a CRD serialises"));
        out.push_str(&serde_saphyr::to_string(&value).expect("a CRD serialises"));
    }
    out
}

/// `minimum: 1` rather than `minimum: 1.0`: the API types keep bounds as
/// floating point, the YAML people read shows the integers they are.
fn whole_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, whole_numbers(v))).collect()),
        other => other,
    }
}

/// A typed object as the API server would give it: JSON with `apiVersion`
/// and `kind`.
pub fn to_object<K: Serialize>(object: &K) -> Value {
    serde_json::to_value(object).expect("kube's objects serialise to JSON")
}

/// The configuration that objects read from the cluster (typed objects
/// through [`to_object`], or a `DynamicObject`'s JSON) give: the same
/// reader and validation as files, through [`lb_core::config::load_objects`].
/// Objects of other kinds are skipped as they are in files.
pub fn load(objects: &[Value]) -> Result<Loaded, Vec<ConfigError>> {
    let sourced: Vec<(&str, Value)> = objects.iter().map(|o| (SOURCE, o.clone())).collect();
    lb_core::config::load_objects(&sourced)
}
