//! Reading the files the commands are given.

use std::path::{Path, PathBuf};

use anyhow::Context;
use lb_core::config::{self, ConfigError};

/// Each file's display name and contents.
pub fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    paths.iter().map(|p| read(p)).collect()
}

pub fn read(path: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

/// `(name, text)` pairs as the pure loaders take them.
pub fn borrow(texts: &[(String, String)]) -> Vec<(&str, &str)> {
    texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect()
}

/// Loads configuration, or prints every error (one per line) and says so.
pub fn load_config(paths: &[PathBuf]) -> anyhow::Result<Result<config::Loaded, Vec<ConfigError>>> {
    let texts = read_all(paths)?;
    Ok(config::load(&borrow(&texts)))
}

pub fn print_errors(errors: &[ConfigError]) {
    for e in errors {
        println!("{e}");
    }
}
