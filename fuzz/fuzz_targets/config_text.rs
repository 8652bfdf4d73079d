//! The configuration and manifest readers on text: an error or a value,
//! never a panic.
//!
//! The first byte chooses what the rest is:
//! - below `0xc0`: raw text for one reader, chosen by the low two bits (the
//!   configuration, Services, Nodes and Namespaces, EndpointSlices), so the
//!   YAML layer and every reader's error paths are reached from bytes;
//! - `0xc0..`: a structured description ([`lb_fuzz::ConfigInput`]) rendered
//!   to YAML (CRDs or the legacy ConfigMap) and loaded as a file: the
//!   decoder's field paths, the legacy conversion and the version checks
//!   on well-formed documents that raw bytes rarely produce.
//!
//! YAML under the sanitizers costs about a millisecond per input whatever
//! its length, so CI runs this target with a small `-max_len` and gives it
//! half of the configuration's fuzzing time; `config_parse` spends the
//! other half on structured inputs without text, twenty times as fast.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use lb_core::manifest::{ManifestFiles, load};
use lb_fuzz::ConfigInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode >= 0xc0 {
        let Ok(input) = ConfigInput::arbitrary_take_rest(Unstructured::new(rest)) else { return };
        let _ = lb_core::config::load(&[("fuzz.yaml", &input.render())]);
        return;
    }
    let text = String::from_utf8_lossy(rest);
    let files = [("fuzz.yaml", &*text)];
    let _ = match mode & 0b11 {
        0 => lb_core::config::load(&files).err().map(drop),
        1 => load(&ManifestFiles { services: &files, ..Default::default() }).err().map(drop),
        2 => load(&ManifestFiles { nodes: &files, namespaces: &files, ..Default::default() }).err().map(drop),
        _ => load(&ManifestFiles { endpoints: &files, ..Default::default() }).err().map(drop),
    };
});
