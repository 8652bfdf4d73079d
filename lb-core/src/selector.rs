//! Kubernetes label selectors, evaluated exactly as the API server does.
//!
//! MetalLB uses them everywhere a policy picks objects: pools by label
//! (`ipAddressPoolSelectors`), Services and Namespaces (`serviceAllocation`),
//! nodes (`nodeSelectors`). An empty selector matches everything; a list of
//! selectors matches when any one of them does (or when the list is empty).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Labels of an object, ordered so that printing and hashing are stable.
pub type Labels = BTreeMap<String, String>;

/// `metav1.LabelSelector`: all `matchLabels` and all `matchExpressions` must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: Labels,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// The four set-based operators of label selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// Why a selector cannot be evaluated; the API server rejects the same ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// `In` and `NotIn` compare against a set, which must not be empty.
    #[error("operator {operator:?} on key {key:?} needs at least one value")]
    MissingValues { key: String, operator: Operator },
    /// `Exists` and `DoesNotExist` only test presence; values would be ignored silently.
    #[error("operator {operator:?} on key {key:?} takes no values")]
    UnexpectedValues { key: String, operator: Operator },
    /// Keys cannot be empty.
    #[error("empty label key")]
    EmptyKey,
}

impl LabelSelector {
    /// A selector that matches exactly these labels.
    pub fn from_labels(labels: Labels) -> Self {
        Self { match_labels: labels, match_expressions: Vec::new() }
    }

    /// Whether the selector has no condition at all (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Checks the selector the way the API server does before it is stored.
    pub fn validate(&self) -> Result<(), SelectorError> {
        if self.match_labels.keys().any(String::is_empty) {
            return Err(SelectorError::EmptyKey);
        }
        for req in &self.match_expressions {
            if req.key.is_empty() {
                return Err(SelectorError::EmptyKey);
            }
            let needs_values = matches!(req.operator, Operator::In | Operator::NotIn);
            if needs_values && req.values.is_empty() {
                return Err(SelectorError::MissingValues { key: req.key.clone(), operator: req.operator });
            }
            if !needs_values && !req.values.is_empty() {
                return Err(SelectorError::UnexpectedValues { key: req.key.clone(), operator: req.operator });
            }
        }
        Ok(())
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|req| req.matches(labels))
    }
}

impl LabelSelectorRequirement {
    fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl std::fmt::Display for LabelSelector {
    /// The API server's string form: `app=web,tier in (a,b),!canary`;
    /// `{}` for the empty selector, which selects everything.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for r in &self.match_expressions {
            parts.push(match r.operator {
                Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
                Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Operator::Exists => r.key.clone(),
                Operator::DoesNotExist => format!("!{}", r.key),
            });
        }
        if parts.is_empty() { f.write_str("{}") } else { f.write_str(&parts.join(",")) }
    }
}

/// MetalLB's rule for lists of selectors: empty selects all, otherwise any one must match.
pub fn any_matches(selectors: &[LabelSelector], labels: &Labels) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement { key: key.into(), operator, values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(LabelSelector::default().matches(&Labels::new()));
        assert!(LabelSelector::default().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_need_every_pair() {
        let s = LabelSelector::from_labels(labels(&[("app", "web"), ("tier", "fe")]));
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "be")])));
    }

    #[test]
    fn operators_follow_kubernetes() {
        let l = labels(&[("env", "prod")]);
        let none = Labels::new();
        let sel = |r| LabelSelector { match_labels: Labels::new(), match_expressions: vec![r] };
        assert!(sel(req("env", Operator::In, &["prod", "dev"])).matches(&l));
        assert!(!sel(req("env", Operator::In, &["dev"])).matches(&l));
        assert!(!sel(req("env", Operator::In, &["prod"])).matches(&none));
        assert!(sel(req("env", Operator::NotIn, &["dev"])).matches(&l));
        assert!(sel(req("env", Operator::NotIn, &["dev"])).matches(&none));
        assert!(!sel(req("env", Operator::NotIn, &["prod"])).matches(&l));
        assert!(sel(req("env", Operator::Exists, &[])).matches(&l));
        assert!(!sel(req("env", Operator::Exists, &[])).matches(&none));
        assert!(sel(req("env", Operator::DoesNotExist, &[])).matches(&none));
        assert!(!sel(req("env", Operator::DoesNotExist, &[])).matches(&l));
    }

    #[test]
    fn validation_matches_api_server() {
        let sel = |r| LabelSelector { match_labels: Labels::new(), match_expressions: vec![r] };
        assert!(sel(req("a", Operator::In, &[])).validate().is_err());
        assert!(sel(req("a", Operator::Exists, &["x"])).validate().is_err());
        assert!(sel(req("a", Operator::NotIn, &["x"])).validate().is_ok());
    }

    #[test]
    fn display_is_the_api_server_form() {
        let s = LabelSelector {
            match_labels: labels(&[("app", "web")]),
            match_expressions: vec![req("tier", Operator::In, &["a", "b"]), req("canary", Operator::DoesNotExist, &[])],
        };
        assert_eq!(s.to_string(), "app=web,tier in (a,b),!canary");
        assert_eq!(LabelSelector::default().to_string(), "{}");
    }

    #[test]
    fn lists_of_selectors_are_ored() {
        let a = LabelSelector::from_labels(labels(&[("a", "1")]));
        let b = LabelSelector::from_labels(labels(&[("b", "1")]));
        assert!(any_matches(&[], &Labels::new()));
        assert!(any_matches(&[a.clone(), b.clone()], &labels(&[("b", "1")])));
        assert!(!any_matches(&[a, b], &labels(&[("c", "1")])));
    }
}
