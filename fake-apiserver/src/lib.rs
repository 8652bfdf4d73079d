//! A fake Kubernetes API server for tests: an in-process HTTP server on
//! 127.0.0.1 that kube-rs's real `Client` talks to, with list and watch
//! (resourceVersion, bookmarks, 410 Gone), writes with optimistic
//! concurrency, merge and apply patches, the status subresource, owner
//! garbage collection, faults on demand and a record of every write.
//!
//! No real cluster is needed, and no part of kube is mocked: tests drive
//! `kube::Api` and `kube::runtime::watcher` exactly as production does.
//!
//! # Modules
//! - [`kinds`]: the registry of served kinds (built-ins and custom resources);
//! - [`store`]: objects, the global resourceVersion, the change history;
//! - [`selectors`]: label and field selectors;
//! - `watch`: watch streams; `routes`: the REST paths;
//! - [`Faults`]: failing and slow requests, dropped watches, expired history;
//! - [`WriteRecord`]: who wrote what, when.
//!
//! # Example
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let server = fake_apiserver::FakeApiServer::start().await?;
//! let client = server.client_as("controller")?;
//! // ... run the code under test with `client` ...
//! server.faults().drop_watches();
//! assert!(server.writes().iter().all(|w| w.writer.as_deref() == Some("controller")));
//! # Ok(()) }
//! ```
//!
//! # Not implemented
//! `resourceVersionMatch` on lists (lists are always current), apply conflicts between managers
//! (apply merges and records the manager; `force` is accepted and ignored),
//! strategic-merge list semantics (treated as a JSON merge patch), YAML
//! bodies, deletecollection, discovery, namespace existence checks,
//! admission and schema validation.

mod error;
mod faults;
pub mod kinds;
mod record;
mod routes;
pub mod selectors;
mod server;
pub mod store;
mod watch;

pub use error::Error;
pub use faults::Faults;
pub use kinds::ResourceKind;
pub use record::{Access, WRITER_HEADER, WriteRecord};
pub use server::{Builder, FakeApiServer};
