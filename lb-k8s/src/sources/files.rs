//! Files as the source of truth, for running without Kubernetes: MetalLB
//! configuration, Service, Node and EndpointSlice manifests, read together
//! into one [`Snapshot`]; [`super::watch`] says when any of them changed.
//!
//! A snapshot is all or nothing: if any file is unreadable or invalid, the
//! caller gets every error and keeps the state it has.

use std::path::{Path, PathBuf};

use lb_core::config::{self, Config, ConfigError};
use lb_core::endpoints::{EndpointSlice, Endpoints};
use lb_core::manifest::{self, ManifestError};
use lb_core::{Namespace, Node, Service};
use serde_json::Value;

use crate::view::Secrets;

/// The files to read.
#[derive(Debug, Clone, Default)]
pub struct FileSources {
    /// MetalLB configuration (and Secrets for `passwordSecret`).
    pub config: Vec<PathBuf>,
    pub services: Vec<PathBuf>,
    pub nodes: Vec<PathBuf>,
    /// Without any, every Service counts as served on every node.
    pub endpoints: Vec<PathBuf>,
    /// Namespace labels, for `serviceAllocation.namespaceSelectors`.
    pub namespaces: Vec<PathBuf>,
}

/// Everything read from the files at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub config: Config,
    pub secrets: Secrets,
    pub services: Vec<Service>,
    pub nodes: Vec<Node>,
    pub endpoints: Option<Endpoints>,
    pub namespaces: Vec<Namespace>,
}

/// Why a snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The configuration is invalid; every error is listed.
    #[error("{} configuration error(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<ConfigError>),
    /// A manifest could not be read.
    #[error("{path}: {source}")]
    Manifest { path: PathBuf, source: ManifestError },
    /// A Secret's `password` is not valid base64.
    #[error("{path}: Secret {secret}: data.password is not base64")]
    Secret { path: PathBuf, secret: String },
}

fn read(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Read { path: path.to_path_buf(), source })
}

fn manifests<T>(
    paths: &[PathBuf],
    parse: impl Fn(&str) -> Result<Vec<T>, ManifestError>,
) -> Result<Vec<T>, SourceError> {
    let mut all = Vec::new();
    for path in paths {
        all.extend(parse(&read(path)?).map_err(|source| SourceError::Manifest { path: path.clone(), source })?);
    }
    Ok(all)
}

impl FileSources {
    /// Every file, for watching.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.config.iter().chain(&self.services).chain(&self.nodes).chain(&self.endpoints).chain(&self.namespaces)
    }

    /// Reads and validates every file.
    pub fn load(&self) -> Result<Snapshot, SourceError> {
        let texts: Vec<(String, String)> =
            self.config.iter().map(|p| Ok((p.display().to_string(), read(p)?))).collect::<Result<_, SourceError>>()?;
        let borrowed: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        let loaded = config::load(&borrowed).map_err(SourceError::Config)?;
        let mut secrets = Secrets::new();
        for (path, text) in self.config.iter().zip(&texts) {
            read_secrets(path, &text.1, &mut secrets)?;
        }
        let endpoints = if self.endpoints.is_empty() {
            None
        } else {
            let slices: Vec<EndpointSlice> = manifests(&self.endpoints, manifest::endpoint_slices)?;
            Some(Endpoints::new(slices))
        };
        Ok(Snapshot {
            config: loaded.config,
            secrets,
            services: manifests(&self.services, manifest::services)?,
            nodes: manifests(&self.nodes, manifest::nodes)?,
            endpoints,
            namespaces: manifests(&self.namespaces, manifest::namespaces)?,
        })
    }
}

/// Secrets in configuration files, for `passwordSecret` (`password` key,
/// `stringData` or base64 `data`), keyed `namespace/name`.
fn read_secrets(path: &Path, text: &str, secrets: &mut Secrets) -> Result<(), SourceError> {
    // The configuration loader has already read these files; a YAML error
    // here would have been reported there.
    let Ok(docs) = manifest::documents(text) else { return Ok(()) };
    for doc in docs.iter().filter(|d| manifest::kind(d) == Some("Secret")) {
        let name = manifest::name(doc).unwrap_or_default();
        let namespace = doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("metallb-system");
        let key = format!("{namespace}/{name}");
        if let Some(p) = doc.pointer("/stringData/password").and_then(Value::as_str) {
            secrets.insert(key, p.as_bytes().to_vec());
        } else if let Some(p) = doc.pointer("/data/password").and_then(Value::as_str) {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(p.trim())
                .map_err(|_| SourceError::Secret { path: path.to_path_buf(), secret: key.clone() })?;
            secrets.insert(key, decoded);
        }
    }
    Ok(())
}
