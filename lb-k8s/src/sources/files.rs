//! Files as the source of truth, for running without Kubernetes: MetalLB
//! configuration (with Secrets for `passwordSecret`), Service, Node,
//! Namespace and EndpointSlice manifests, read together into one
//! [`Files`] snapshot; [`super::watch`] says when any of them changed.
//!
//! Reading is all this module does: parsing and validation are the pure
//! loaders' (`lb_core::config::load`, `lb_core::manifest::load`), the same
//! ones `lb plan` and `lb check-config` use. A snapshot is all or nothing:
//! if any file is unreadable or invalid, the caller gets every error and
//! keeps the state it has.

use std::path::{Path, PathBuf};

use lb_core::config::{self, ConfigError, Secrets};
use lb_core::manifest::{self, ManifestFileError, ManifestFiles, ManifestWarning};
use lb_core::plan::Observed;

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
pub struct Files {
    pub observed: Observed,
    pub secrets: Secrets,
    /// What was accepted but deserves a word (a Service given twice).
    pub warnings: Vec<ManifestWarning>,
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
    #[error(transparent)]
    Manifest(#[from] ManifestFileError),
}

/// Each file's display name and text.
fn read_all(paths: &[PathBuf]) -> Result<Vec<(String, String)>, SourceError> {
    paths.iter().map(|p| Ok((p.display().to_string(), read(p)?))).collect()
}

fn read(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Read { path: path.to_path_buf(), source })
}

fn borrowed(texts: &[(String, String)]) -> Vec<(&str, &str)> {
    texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect()
}

impl FileSources {
    /// Every file, for watching.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.config.iter().chain(&self.services).chain(&self.nodes).chain(&self.endpoints).chain(&self.namespaces)
    }

    /// Reads and validates every file.
    pub fn load(&self) -> Result<Files, SourceError> {
        let config_texts = read_all(&self.config)?;
        let loaded = config::load(&borrowed(&config_texts)).map_err(SourceError::Config)?;
        let (services, namespaces, nodes, endpoints) = (
            read_all(&self.services)?,
            read_all(&self.namespaces)?,
            read_all(&self.nodes)?,
            read_all(&self.endpoints)?,
        );
        let manifests = manifest::load(&ManifestFiles {
            services: &borrowed(&services),
            namespaces: &borrowed(&namespaces),
            nodes: &borrowed(&nodes),
            endpoints: &borrowed(&endpoints),
        })?;
        let warnings = manifests.warnings.clone();
        Ok(Files { observed: Observed::new(loaded.config, manifests), secrets: loaded.secrets, warnings })
    }
}
