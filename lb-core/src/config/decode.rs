//! From generic YAML values to typed resources, reporting every unknown key
//! (with its path) instead of silently dropping it.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ConfigError, ConfigErrorKind};

/// Where an object came from, so errors can point at what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    /// `Kind/name` as the user wrote it (for the legacy form, the ConfigMap).
    pub object: String,
    /// Set for resources generated from a legacy ConfigMap.
    pub legacy: Option<LegacyPath>,
}

/// How a generated resource's field paths map back into the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyPath {
    /// Path of the legacy element (`data.config.address-pools[2]`).
    pub base: String,
    /// For the generated Community: alias names by index, since the legacy form is a map.
    pub alias_names: Vec<String>,
    /// Field names are kept as they are (`AddressPool`, whose fields are
    /// the CRDs' own), not turned into the ConfigMap's kebab-case.
    pub camel_case: bool,
}

impl Origin {
    /// The path to show for a field of the resource (`spec.addresses[1]`).
    pub fn field(&self, crd_path: &str) -> String {
        let Some(legacy) = &self.legacy else {
            return crd_path.to_string();
        };
        if legacy.camel_case {
            return match crd_path.strip_prefix("spec.") {
                Some(rest) => format!("{}.{rest}", legacy.base),
                None => crd_path.to_string(),
            };
        }
        let rest = crd_path.strip_prefix("spec.").or_else(|| crd_path.strip_prefix("metadata.")).unwrap_or(crd_path);
        if !legacy.alias_names.is_empty()
            && let Some(tail) = rest.strip_prefix("communities[")
            && let Some((index, _)) = tail.split_once(']')
            && let Some(name) = index.parse::<usize>().ok().and_then(|i| legacy.alias_names.get(i))
        {
            return format!("{}.{name}", legacy.base);
        }
        let mapped: Vec<String> = rest.split('.').map(legacy_segment).collect();
        format!("{}.{}", legacy.base, mapped.join("."))
    }

    pub fn error(&self, crd_path: &str, kind: ConfigErrorKind) -> ConfigError {
        ConfigError { file: self.file.to_string(), object: self.object.clone(), field: self.field(crd_path), kind }
    }
}

/// The legacy (kebab-case) name of a CRD path segment such as `holdTime` or `addresses[1]`.
fn legacy_segment(segment: &str) -> String {
    let (name, index) = match segment.find('[') {
        Some(i) => segment.split_at(i),
        None => (segment, ""),
    };
    let legacy = match name {
        "localPref" => "localpref".to_string(),
        "myASN" => "my-asn".to_string(),
        "peerASN" => "peer-asn".to_string(),
        "routerID" => "router-id".to_string(),
        "ebgpMultiHop" => "ebgp-multihop".to_string(),
        "avoidBuggyIPs" => "avoid-buggy-ips".to_string(),
        "aggregationLengthV6" => "aggregation-length-v6".to_string(),
        other => {
            let mut out = String::with_capacity(other.len() + 4);
            for c in other.chars() {
                if c.is_ascii_uppercase() {
                    out.push('-');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            out
        }
    };
    format!("{legacy}{index}")
}

/// Formats a path as `spec.addresses[1].name`.
fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty() || path == ".") {
        (_, true) => prefix.to_string(),
        (true, false) => path.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => join(&ignored_path(parent), key),
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

fn error_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join(&out, key),
            Segment::Enum { variant } => out = join(&out, variant),
            Segment::Unknown => out = join(&out, "?"),
        }
    }
    out
}

/// `value` without the object entries that are `null`. The API server prunes
/// them from custom resources and Go's decoder leaves such fields unset, so
/// `key:` with nothing after it (every list item commented out) means "not
/// set", not a type error.
pub(crate) fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Decodes `value` (found at `prefix` inside the object) into `T`. Unknown
/// keys are all reported; a type error stops this value (serde cannot go on).
pub fn decode<T: DeserializeOwned>(
    value: &Value,
    prefix: &str,
    origin: &Origin,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let value = without_nulls(value);
    let mut track = serde_path_to_error::Track::new();
    let mut unknown = Vec::new();
    let result = serde_ignored::deserialize(serde_path_to_error::Deserializer::new(&value, &mut track), |path| {
        unknown.push(ignored_path(&path))
    });
    for path in unknown {
        errors.push(origin.error(&join(prefix, &path), ConfigErrorKind::UnknownField));
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let path = error_path(&track.path());
            errors.push(origin.error(&join(prefix, &path), ConfigErrorKind::Decode(e.to_string())));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_paths() {
        let origin = Origin {
            file: "f".into(),
            object: "ConfigMap/config".into(),
            legacy: Some(LegacyPath { base: "data.config.peers[0]".into(), alias_names: vec![], camel_case: false }),
        };
        assert_eq!(origin.field("spec.holdTime"), "data.config.peers[0].hold-time");
        assert_eq!(
            origin.field("spec.nodeSelectors[1].matchLabels"),
            "data.config.peers[0].node-selectors[1].match-labels"
        );
        assert_eq!(origin.field("spec.peerASN"), "data.config.peers[0].peer-asn");
    }

    #[test]
    fn unknown_keys_are_all_reported() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct S {
            #[serde(default)]
            a: Vec<Inner>,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            #[serde(default)]
            b: u8,
        }
        let origin = Origin { file: "f".into(), object: "K/n".into(), legacy: None };
        let mut errors = Vec::new();
        let v = serde_json::json!({"a": [{"b": 1, "c": 2}], "d": 3});
        assert!(decode::<S>(&v, "spec", &origin, &mut errors).is_some());
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.a[0].c", "spec.d"]);
        errors.clear();
        let v = serde_json::json!({"a": [{"b": 300}]});
        assert!(decode::<S>(&v, "spec", &origin, &mut errors).is_none());
        assert_eq!(errors[0].field, "spec.a[0].b");
    }
}
