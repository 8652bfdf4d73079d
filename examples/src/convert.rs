//! `lb convert`: the legacy ConfigMap and MetalLB 0.13's `AddressPool` as
//! the current `metallb.io` resources.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::files;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let mut loaded = match files::load_config(&[path.to_path_buf()])? {
        Ok(l) => l,
        Err(errors) => {
            files::print_errors(&errors);
            eprintln!("{} error(s); nothing converted", errors.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    if !loaded.resources.iter().any(|r| r.origin.legacy.is_some()) {
        anyhow::bail!(
            "{}: no legacy MetalLB configuration (a ConfigMap with a `config` key, or an AddressPool) found",
            path.display()
        );
    }
    for s in &loaded.skipped {
        let line = format!("{}: {}: left out (not MetalLB configuration)", s.file, s.object);
        eprintln!("{}", lb_core::manifest::escape(&line));
    }
    // The legacy format had no rule for names; what is written must apply.
    for r in lb_core::config::legacy::rename_for_kubernetes(&mut loaded.resources) {
        let mut note = format!("note: {} {:?} is written as {:?} (a Kubernetes name)", r.kind, r.from, r.to);
        if r.kind == "IPAddressPool" {
            note.push_str("; Services' address-pool annotations that name it must change too");
        }
        eprintln!("{}", lb_core::manifest::escape(&note));
    }
    let mut out = String::new();
    for r in &loaded.resources {
        let yaml = serde_saphyr::to_string(&r.resource).context("cannot write YAML")?;
        out.push_str("---\n");
        out.push_str(&yaml);
        if !yaml.ends_with('\n') {
            out.push('\n');
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
