//! Label and field selectors, parsed from the query string and matched
//! against JSON objects.
//!
//! Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
//! terms joined by commas (all must hold). As in Kubernetes, `!=` and
//! `notin` also match objects without the label.
//!
//! Fields: `path=v`, `path==v`, `path!=v` on any dotted path
//! (`metadata.name`, `spec.nodeName`, `status.phase`); a missing field
//! compares as the empty string.

use serde_json::Value;

use crate::Error;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelTerm {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    terms: Vec<LabelTerm>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    ///
    /// # Errors
    /// [`Error::BadRequest`] when a term is malformed.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |term: &str| Error::BadRequest(format!("unable to parse requirement: {term:?}"));
        let mut terms = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let parsed = if let Some(key) = term.strip_prefix('!') {
                LabelTerm::NotExists(key.trim().to_owned())
            } else if let Some((key, value)) = term.split_once("!=") {
                LabelTerm::NotEquals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
                LabelTerm::Equals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, set)) = split_set(term, " notin ") {
                LabelTerm::NotIn(key, set.ok_or_else(|| bad(term))?)
            } else if let Some((key, set)) = split_set(term, " in ") {
                LabelTerm::In(key, set.ok_or_else(|| bad(term))?)
            } else if term.contains(char::is_whitespace) || term.contains(['(', ')']) {
                return Err(bad(term));
            } else {
                LabelTerm::Exists(term.to_owned())
            };
            terms.push(parsed);
        }
        Ok(Self { terms })
    }

    /// Whether an object's `metadata.labels` satisfy every term.
    #[must_use]
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        self.terms.iter().all(|term| match term {
            LabelTerm::Equals(k, v) => label(k) == Some(v.as_str()),
            LabelTerm::NotEquals(k, v) => label(k) != Some(v.as_str()),
            LabelTerm::In(k, set) => label(k).is_some_and(|l| set.iter().any(|s| s == l)),
            LabelTerm::NotIn(k, set) => !label(k).is_some_and(|l| set.iter().any(|s| s == l)),
            LabelTerm::Exists(k) => label(k).is_some(),
            LabelTerm::NotExists(k) => label(k).is_none(),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `key OP (a,b)`: the key and the set, or `Some((key, None))` when the set is malformed.
fn split_set(term: &str, op: &str) -> Option<(String, Option<Vec<String>>)> {
    let (key, rest) = term.split_once(op)?;
    let set = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(|inner| inner.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
    Some((key.trim().to_owned(), set))
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// (dotted path, value, whether the value must be equal).
    terms: Vec<(String, String, bool)>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter.
    ///
    /// # Errors
    /// [`Error::BadRequest`] when a term has no operator.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, value, equal) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, v, true)
            } else {
                return Err(Error::BadRequest(format!("invalid field selector: {term:?}")));
            };
            terms.push((path.trim().to_owned(), value.trim().to_owned(), equal));
        }
        Ok(Self { terms })
    }

    /// Whether the object's fields satisfy every term.
    #[must_use]
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(path, value, equal)| (field_text(object, path) == *value) == *equal)
    }
}

/// The value at a dotted path as selector text; missing or null is "".
fn field_text(object: &Value, path: &str) -> String {
    let found = path.split('.').try_fold(object, |v, key| v.get(key));
    match found {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels},
               "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_operators() {
        let o = pod(json!({"app": "web", "tier": "front"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m(""));
        assert!(m("app=web") && m("app==web") && !m("app=db"));
        assert!(m("app!=db") && !m("app!=web") && m("missing!=x"));
        assert!(m("app in (db, web)") && !m("app in (db)") && !m("missing in (x)"));
        assert!(m("app notin (db)") && !m("app notin (db,web)") && m("missing notin (x)"));
        assert!(m("tier") && !m("missing") && m("!missing") && !m("!tier"));
        assert!(m("app in (db,web),tier=front") && !m("app in (db,web),tier=back"));
        assert!(LabelSelector::parse("app in db").is_err());
        assert!(LabelSelector::parse("a b").is_err());
    }

    #[test]
    fn field_paths() {
        let o = pod(json!({}));
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&o);
        assert!(m("metadata.name=p") && m("metadata.namespace==ns") && !m("metadata.name=q"));
        assert!(m("spec.nodeName=n1,status.phase!=Pending") && !m("status.phase!=Running"));
        assert!(m("spec.missing=") && !m("spec.missing=x"));
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
