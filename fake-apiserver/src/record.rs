//! The record of every write request, for "who wrote what, when" assertions.

use std::time::Instant;

use serde_json::Value;

/// The header a test sets per client to name the writer
/// ([`crate::FakeApiServer::client_as`] sets it).
pub const WRITER_HEADER: &str = "x-writer";

/// One POST, PUT, PATCH or DELETE, whatever its outcome.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    /// Order of arrival, from 0.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `x-writer` header, if the client set one.
    pub writer: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// The request body, when it was JSON.
    pub body: Option<Value>,
    /// The HTTP status answered.
    pub status: u16,
    /// When the request arrived.
    pub started: Instant,
    /// When the answer was ready.
    pub finished: Instant,
}

impl WriteRecord {
    /// Whether the write changed (or would have changed) the store: a 2xx answer.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One request as an authorizer sees it: who asked for which verb on
/// which resource, for checking RBAC manifests against what a component
/// really does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// The `x-writer` header, if the client set one.
    pub writer: Option<String>,
    /// RBAC's verb: get, list, watch, create, update, patch, delete.
    pub verb: String,
    /// API group (`""` for the core group).
    pub group: String,
    /// Plural, with `/status` for the status subresource.
    pub resource: String,
    /// `None` for cluster-wide requests and cluster-scoped kinds.
    pub namespace: Option<String>,
    /// The object, for requests on one.
    pub name: Option<String>,
}
