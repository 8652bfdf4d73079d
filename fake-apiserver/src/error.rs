//! Errors of the fake API server, and the `Status` objects they become on
//! the wire.

use serde_json::{Value, json};

/// What went wrong with a request or a direct store call.
///
/// Every variant maps to the HTTP code and `Status.reason` the real API
/// server uses for the same situation, so `kube::Error::Api` carries the
/// same `code` and `reason` a client would see against a real cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No object of this resource with this name (404 NotFound).
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// The resource's plural, e.g. `pods`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The URL names no registered resource (404 NotFound).
    #[error("the server could not find the requested resource: {0}")]
    UnknownResource(String),
    /// Create of a name that exists (409 AlreadyExists).
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// The resource's plural.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// A write's resourceVersion or uid precondition does not hold (409 Conflict).
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict {
        /// The resource's plural.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The object fails validation (422 Invalid).
    #[error("{resource} \"{name}\" is invalid: {reason}")]
    Invalid {
        /// The resource's plural.
        resource: String,
        /// The object's name (may be empty).
        name: String,
        /// Which field is wrong and why.
        reason: String,
    },
    /// The request is malformed: bad JSON, a name or namespace that does not
    /// match the URL, a bad selector (400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// The method is not allowed on this path (405 MethodNotAllowed).
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// The patch content type is not supported (415 UnsupportedMediaType).
    #[error("the body of the request was in an unknown format: {0}")]
    UnsupportedMediaType(String),
    /// A resourceVersion older than the retained history (410 Expired).
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The version asked for.
        requested: u64,
        /// The oldest version a watch can still start from.
        oldest: u64,
    },
    /// A `continue` token the server does not know (any more).
    #[error(
        "the provided continue parameter is too old to display a consistent list result; start a new list without it"
    )]
    ContinueExpired,
    /// A failure injected through [`crate::Faults`].
    #[error("injected failure ({code})")]
    Injected {
        /// The HTTP code to answer with.
        code: u16,
    },
    /// A direct store call named an object without a registered kind.
    #[error("no registered kind {api_version}/{kind}")]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// A test helper waited longer than its timeout.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The listener could not be bound.
    #[error("cannot bind the listener: {0}")]
    Bind(String),
    /// kube could not build a client for this server.
    #[error("cannot build a kube client: {0}")]
    Client(String),
    /// A stored object does not deserialize into the requested type.
    #[error("stored object does not decode: {0}")]
    Decode(String),
}

impl Error {
    /// The HTTP status code the real API server answers with.
    #[must_use]
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } | Self::UnknownResource(_) | Self::UnknownKind { .. } => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::Invalid { .. } => 422,
            Self::BadRequest(_) | Self::Decode(_) => 400,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedMediaType(_) => 415,
            Self::Expired { .. } | Self::ContinueExpired => 410,
            Self::Injected { code } => *code,
            Self::Timeout(_) => 504,
            Self::Bind(_) | Self::Client(_) => 500,
        }
    }

    /// The `Status.reason` the real API server uses.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } | Self::UnknownResource(_) | Self::UnknownKind { .. } => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest(_) | Self::Decode(_) => "BadRequest",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Expired { .. } | Self::ContinueExpired => "Expired",
            Self::Injected { .. } => "InternalError",
            Self::Timeout(_) => "Timeout",
            Self::Bind(_) | Self::Client(_) => "InternalError",
        }
    }

    /// The error as a `meta/v1` `Status` object.
    #[must_use]
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name }
            | Self::Invalid { resource, name, .. } => Some(json!({ "name": name, "kind": resource })),
            _ => None,
        };
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}
