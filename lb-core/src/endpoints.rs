//! Where a Service's backends run, from its EndpointSlices (or the older
//! Endpoints objects), as far as announcement cares: which nodes have a
//! serving endpoint.

use std::collections::HashMap;

use crate::service::ServiceKey;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One endpoint of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    pub node_name: Option<String>,
    /// `conditions.ready`; unset means ready (the API's own rule).
    pub ready: Option<bool>,
    /// `conditions.serving`: ready, or terminating but still able to serve.
    pub serving: Option<bool>,
}

impl Endpoint {
    /// Whether traffic sent to it would be served. A terminating endpoint that
    /// still serves counts, so that a rolling update of the last pods does
    /// not withdraw the route while connections drain (MetalLB's rule).
    pub fn is_serving(&self) -> bool {
        self.ready != Some(false) || self.serving == Some(true)
    }
}

/// An EndpointSlice (or the endpoints of an Endpoints object), tied to its Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointSlice {
    pub service: ServiceKey,
    pub endpoints: Vec<Endpoint>,
}

/// Every Service's endpoints, across all of its slices.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    by_service: HashMap<ServiceKey, Vec<Endpoint>>,
}

impl Endpoints {
    pub fn new(slices: impl IntoIterator<Item = EndpointSlice>) -> Self {
        let mut by_service: HashMap<ServiceKey, Vec<Endpoint>> = HashMap::new();
        for slice in slices {
            by_service.entry(slice.service).or_default().extend(slice.endpoints);
        }
        Self { by_service }
    }

    /// The endpoints of a Service; none if it has no slice.
    pub fn of(&self, service: &ServiceKey) -> &[Endpoint] {
        self.by_service.get(service).map_or(&[], Vec::as_slice)
    }

    /// Whether some endpoint serves, on any node (`externalTrafficPolicy: Cluster`).
    pub fn serving_anywhere(&self, service: &ServiceKey) -> bool {
        self.of(service).iter().any(Endpoint::is_serving)
    }

    /// Whether an endpoint on `node` serves (`externalTrafficPolicy: Local`).
    pub fn serving_on(&self, service: &ServiceKey, node: &str) -> bool {
        self.of(service).iter().any(|e| e.is_serving() && e.node_name.as_deref() == Some(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_conditions() {
        let e = |ready, serving| Endpoint { node_name: None, ready, serving };
        assert!(e(None, None).is_serving());
        assert!(e(Some(true), None).is_serving());
        assert!(!e(Some(false), None).is_serving());
        assert!(!e(Some(false), Some(false)).is_serving());
        assert!(e(Some(false), Some(true)).is_serving());
    }

    #[test]
    fn slices_of_one_service_add_up() {
        let key = ServiceKey::new("default", "web");
        let slice = |node: &str, ready| EndpointSlice {
            service: key.clone(),
            endpoints: vec![Endpoint { node_name: Some(node.into()), ready: Some(ready), serving: None }],
        };
        let eps = Endpoints::new([slice("a", false), slice("b", true)]);
        assert!(eps.serving_anywhere(&key));
        assert!(!eps.serving_on(&key, "a"));
        assert!(eps.serving_on(&key, "b"));
        assert!(!eps.serving_anywhere(&ServiceKey::new("default", "other")));
    }
}
