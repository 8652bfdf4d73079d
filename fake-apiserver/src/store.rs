//! The object store: JSON objects keyed by resource, namespace and name, a
//! global resourceVersion, and a bounded history of changes for watches.
//!
//! Everything here is synchronous and runs under the server's lock; the
//! HTTP routes and the test-side handle both call into it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::Error;
use crate::kinds::{Registry, ResourceId, ResourceKind};
use crate::selectors::{FieldSelector, LabelSelector};

/// (resource, namespace or "" for cluster-scoped, name).
type Key = (ResourceId, String, String);

/// What happened to an object, as a watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

/// One entry of the change history.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// Which resource changed.
    pub resource: ResourceId,
    /// The object's namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Added, modified or deleted.
    pub event: EventType,
    /// The object after the change (for deletes: as it was, with the new version).
    pub object: Value,
    /// The object before the change, for selector transitions.
    pub previous: Option<Value>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything except status (when status is a subresource).
    Main,
    /// The `/status` subresource: status only.
    Status,
}

/// How a PATCH body applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 7386 JSON merge patch (strategic merge patch is treated the same).
    Merge,
    /// Server-side apply: merge the applied fields, create if absent, record the manager.
    Apply,
    /// RFC 6902 JSON patch.
    Json,
}

/// Preconditions and propagation of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// The object must have this uid.
    pub uid: Option<String>,
    /// The object must have this resourceVersion.
    pub resource_version: Option<String>,
    /// Leave dependents alone instead of garbage-collecting them.
    pub orphan: bool,
}

/// The objects, the version counter and the change history.
#[derive(Debug)]
pub struct Store {
    registry: Registry,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Change>,
    history_limit: usize,
    /// The oldest resourceVersion a watch can resume from.
    floor: u64,
    next_id: u64,
}

impl Store {
    /// An empty store with the built-in kinds, keeping `history_limit` changes.
    #[must_use]
    pub fn new(history_limit: usize) -> Self {
        Self {
            registry: Registry::default(),
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            floor: 0,
            next_id: 0,
        }
    }

    /// The kinds this store serves.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Adds a kind (a custom resource) at run time.
    pub fn register(&mut self, kind: ResourceKind) {
        self.registry.register(kind);
    }

    /// The current (latest) resourceVersion.
    #[must_use]
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch may resume from.
    #[must_use]
    pub fn oldest_resumable(&self) -> u64 {
        self.floor
    }

    /// Forgets the change history: every watch from a version before now gets 410.
    pub fn expire_history(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }

    /// The stored object, if any.
    #[must_use]
    pub fn get(&self, kind: &ResourceKind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(kind, namespace, name))
    }

    /// The objects of one resource, optionally in one namespace, that match the selectors.
    #[must_use]
    pub fn list(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        let id = kind.id();
        self.objects
            .range((id.clone(), String::new(), String::new())..)
            .take_while(|((r, _, _), _)| *r == id)
            .filter(|((_, ns, _), _)| namespace.is_none_or(|want| want == ns))
            .filter(|(_, o)| labels.matches(o) && fields.matches(o))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Changes after `since`, or [`Error::Expired`] when some were forgotten.
    ///
    /// # Errors
    /// [`Error::Expired`] when `since` is older than the retained history.
    pub fn changes_since(&self, since: u64) -> Result<impl Iterator<Item = &Change>, Error> {
        if since < self.floor {
            return Err(Error::Expired { requested: since, oldest: self.floor });
        }
        let start = self.history.partition_point(|c| c.rv <= since);
        Ok(self.history.range(start..))
    }

    /// Creates an object (POST). `keep_status` is for seeding from a test:
    /// clients' creates drop status when it is a subresource.
    ///
    /// # Errors
    /// 400 on a body that does not fit the URL, 409 when the name exists, 422
    /// on a missing or malformed name.
    pub fn create(
        &mut self,
        kind: &ResourceKind,
        namespace: &str,
        mut object: Value,
        manager: Option<(&str, &str)>,
        keep_status: bool,
    ) -> Result<Value, Error> {
        check_type(kind, &mut object)?;
        let namespace = if kind.namespaced { namespace } else { "" };
        let meta = metadata_mut(&mut object)?;
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if kind.namespaced && !ns.is_empty() && ns != namespace => {
                return Err(Error::BadRequest(format!(
                    "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({namespace})"
                )));
            }
            _ => {}
        }
        if kind.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        let name = match meta.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(name) => name.to_owned(),
            None => {
                let Some(prefix) = meta.get("generateName").and_then(Value::as_str).map(str::to_owned) else {
                    return Err(Error::Invalid {
                        resource: kind.plural.clone(),
                        name: String::new(),
                        reason: "metadata.name: Required value: name or generateName is required".into(),
                    });
                };
                loop {
                    self.next_id += 1;
                    let candidate = format!("{prefix}{}", suffix(self.next_id));
                    if !self.objects.contains_key(&key(kind, namespace, &candidate)) {
                        break candidate;
                    }
                }
            }
        };
        if !valid_name(&name) {
            return Err(Error::Invalid {
                resource: kind.plural.clone(),
                name: name.clone(),
                reason: "metadata.name: Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'".into(),
            });
        }
        let k = key(kind, namespace, &name);
        if self.objects.contains_key(&k) {
            return Err(Error::AlreadyExists { resource: kind.plural.clone(), name });
        }
        self.next_id += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.next_id);
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        if kind.status_subresource
            && !keep_status
            && let Some(o) = object.as_object_mut()
        {
            o.remove("status");
        }
        if let Some((manager, operation)) = manager {
            record_manager(&mut object, kind, manager, operation, Part::Main);
        }
        Ok(self.commit(k, EventType::Added, object, None))
    }

    /// Replaces an object (PUT) or its status (PUT `/status`).
    ///
    /// # Errors
    /// 404 when absent, 409 when the body's resourceVersion is not current,
    /// 400 when the body names another object.
    pub fn replace(
        &mut self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
        mut object: Value,
        part: Part,
        manager: Option<(&str, &str)>,
    ) -> Result<Value, Error> {
        check_type(kind, &mut object)?;
        let existing = self.existing(kind, namespace, name)?;
        if let Some(body_name) = object["metadata"]["name"].as_str().filter(|n| *n != name) {
            return Err(Error::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        check_version(kind, &existing, &object)?;
        self.write(kind, namespace, name, existing, object, part, manager)
    }

    /// Patches an object (PATCH), returning it and whether it was created (apply only).
    ///
    /// # Errors
    /// 404 when absent (except for apply), 409 when the patch carries a stale
    /// resourceVersion, 422 when a JSON patch does not apply.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
        patch: &Value,
        patch_kind: PatchKind,
        part: Part,
        manager: Option<(&str, &str)>,
    ) -> Result<(Value, bool), Error> {
        let existing = match self.existing(kind, namespace, name) {
            Ok(existing) => existing,
            Err(not_found) if patch_kind == PatchKind::Apply && part == Part::Main => {
                let mut object = patch.clone();
                if object["metadata"]["name"].as_str().is_some_and(|n| n != name) {
                    return Err(Error::BadRequest("the name of the applied object does not match the URL".into()));
                }
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("name".into(), json!(name));
                } else {
                    return Err(not_found);
                }
                return self.create(kind, namespace, object, manager, false).map(|o| (o, true));
            }
            Err(e) => return Err(e),
        };
        let mut merged = existing.clone();
        match patch_kind {
            PatchKind::Merge | PatchKind::Apply => {
                if !patch.is_object() {
                    return Err(Error::BadRequest("a merge patch must be a JSON object".into()));
                }
                check_version(kind, &existing, patch)?;
                merge_patch(&mut merged, patch);
            }
            PatchKind::Json => {
                json_patch(&mut merged, patch).map_err(|reason| Error::Invalid {
                    resource: kind.plural.clone(),
                    name: name.to_owned(),
                    reason,
                })?;
                check_version(kind, &existing, &merged)?;
            }
        }
        self.write(kind, namespace, name, existing, merged, part, manager).map(|o| (o, false))
    }

    /// Deletes an object: at once without finalizers (then its dependents
    /// are garbage-collected), otherwise by setting `deletionTimestamp`.
    ///
    /// # Errors
    /// 404 when absent, 409 when a precondition does not hold.
    pub fn delete(
        &mut self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, Error> {
        let existing = self.existing(kind, namespace, name)?;
        let conflict = || Error::Conflict { resource: kind.plural.clone(), name: name.to_owned() };
        if options.uid.as_deref().is_some_and(|uid| existing["metadata"]["uid"].as_str() != Some(uid)) {
            return Err(conflict());
        }
        if options
            .resource_version
            .as_deref()
            .is_some_and(|rv| existing["metadata"]["resourceVersion"].as_str() != Some(rv))
        {
            return Err(conflict());
        }
        let namespace = if kind.namespaced { namespace } else { "" };
        Ok(self.remove(key(kind, namespace, name), existing, options.orphan))
    }

    /// Inserts or overwrites an object as given (status included), for tests.
    ///
    /// # Errors
    /// 404 when apiVersion/kind is not registered, else as [`Store::create`].
    pub fn seed(&mut self, object: Value) -> Result<Value, Error> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind_name = object["kind"].as_str().unwrap_or_default();
        let kind = self
            .registry
            .by_kind(api_version, kind_name)
            .cloned()
            .ok_or_else(|| Error::UnknownKind { api_version: api_version.into(), kind: kind_name.into() })?;
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        match self.existing(&kind, &namespace, &name) {
            Ok(existing) => {
                let mut object = object;
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                }
                let namespace = if kind.namespaced { namespace.as_str() } else { "" };
                let mut new = object;
                preserve_identity(&existing, &mut new);
                if new == existing {
                    return Ok(existing);
                }
                Ok(self.commit(key(&kind, namespace, &name), EventType::Modified, new, Some(existing)))
            }
            Err(_) => self.create(&kind, &namespace, object, None, true),
        }
    }

    /// Removes an object as a test would with `kubectl delete` (finalizers honoured).
    ///
    /// # Errors
    /// 404 when absent.
    pub fn remove_object(&mut self, kind: &ResourceKind, namespace: &str, name: &str) -> Result<Value, Error> {
        self.delete(kind, namespace, name, &DeleteOptions::default())
    }

    fn existing(&self, kind: &ResourceKind, namespace: &str, name: &str) -> Result<Value, Error> {
        let namespace = if kind.namespaced { namespace } else { "" };
        self.objects
            .get(&key(kind, namespace, name))
            .cloned()
            .ok_or_else(|| Error::NotFound { resource: kind.plural.clone(), name: name.to_owned() })
    }

    /// The common tail of PUT and PATCH: keep what the part may not change,
    /// keep server-set metadata, bump generation, skip no-ops, finish deletes.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
        existing: Value,
        mut new: Value,
        part: Part,
        manager: Option<(&str, &str)>,
    ) -> Result<Value, Error> {
        if part == Part::Status && !kind.status_subresource {
            return Err(Error::UnknownResource(format!("{}/status", kind.plural)));
        }
        if !new.is_object() {
            return Err(Error::BadRequest("the object must be a JSON object".into()));
        }
        match part {
            Part::Main if kind.status_subresource => set_field(&mut new, "status", existing.get("status")),
            Part::Main => {}
            Part::Status => {
                let status = new.get("status").cloned();
                new = existing.clone();
                set_field(&mut new, "status", status.as_ref());
            }
        }
        preserve_identity(&existing, &mut new);
        if strip_meta(&new) != strip_meta(&existing) {
            let generation = existing["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        if new == existing {
            return Ok(existing);
        }
        if let Some((manager, operation)) = manager {
            record_manager(&mut new, kind, manager, operation, part);
        }
        let namespace = if kind.namespaced { namespace } else { "" };
        let k = key(kind, namespace, name);
        let finalizers_done = new["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
        if new["metadata"].get("deletionTimestamp").is_some() && finalizers_done {
            return Ok(self.remove(k, new, false));
        }
        Ok(self.commit(k, EventType::Modified, new, Some(existing)))
    }

    /// Deletes (or marks for deletion) and garbage-collects dependents.
    fn remove(&mut self, k: Key, object: Value, orphan: bool) -> Value {
        let has_finalizers = object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if object["metadata"].get("deletionTimestamp").is_some() {
                return object;
            }
            let previous = object.clone();
            let mut marked = object;
            marked["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            return self.commit(k, EventType::Modified, marked, Some(previous));
        }
        self.objects.remove(&k);
        let uid = object["metadata"]["uid"].as_str().map(str::to_owned);
        let deleted = self.commit(k, EventType::Deleted, object.clone(), Some(object));
        if !orphan && uid.is_some() {
            self.collect_garbage();
        }
        deleted
    }

    /// Deletes every object whose owners (by uid) are all gone.
    fn collect_garbage(&mut self) {
        loop {
            let live: BTreeSet<&str> = self.objects.values().filter_map(|o| o["metadata"]["uid"].as_str()).collect();
            let orphaned = self.objects.iter().find(|(_, o)| {
                let owners = o["metadata"]["ownerReferences"].as_array();
                owners.is_some_and(|refs| {
                    !refs.is_empty() && refs.iter().all(|r| r["uid"].as_str().is_none_or(|u| !live.contains(u)))
                }) && o["metadata"].get("deletionTimestamp").is_none()
            });
            let Some((k, o)) = orphaned.map(|(k, o)| (k.clone(), o.clone())) else { return };
            self.remove(k, o, false);
        }
    }

    /// Bumps the version, stores (or forgets) the object, records the change.
    fn commit(&mut self, k: Key, event: EventType, mut object: Value, previous: Option<Value>) -> Value {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if event != EventType::Deleted {
            self.objects.insert(k.clone(), object.clone());
        }
        self.history.push_back(Change {
            rv: self.rv,
            resource: k.0,
            namespace: k.1,
            event,
            object: object.clone(),
            previous,
        });
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.floor = dropped.rv;
            }
        }
        object
    }
}

fn key(kind: &ResourceKind, namespace: &str, name: &str) -> Key {
    let namespace = if kind.namespaced { namespace } else { "" };
    (kind.id(), namespace.to_owned(), name.to_owned())
}

/// Fills apiVersion and kind, or rejects a body of another type.
fn check_type(kind: &ResourceKind, object: &mut Value) -> Result<(), Error> {
    let Some(o) = object.as_object_mut() else {
        return Err(Error::BadRequest("the object must be a JSON object".into()));
    };
    let api_version = kind.api_version();
    for (field, want) in [("apiVersion", api_version.as_str()), ("kind", kind.kind.as_str())] {
        match o.get(field).and_then(Value::as_str) {
            Some(got) if !got.is_empty() && got != want => {
                return Err(Error::BadRequest(format!("{field} {got:?} does not match the URL ({want:?})")));
            }
            _ => {
                o.insert(field.into(), json!(want));
            }
        }
    }
    Ok(())
}

fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, Error> {
    let o = object.as_object_mut().ok_or_else(|| Error::BadRequest("the object must be a JSON object".into()))?;
    o.entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Error::BadRequest("metadata must be an object".into()))
}

/// 409 when the body or patch carries a resourceVersion that is not current.
fn check_version(kind: &ResourceKind, existing: &Value, body: &Value) -> Result<(), Error> {
    let given = body["metadata"]["resourceVersion"].as_str().filter(|v| !v.is_empty());
    match given {
        Some(rv) if existing["metadata"]["resourceVersion"].as_str() != Some(rv) => Err(Error::Conflict {
            resource: kind.plural.clone(),
            name: existing["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Keeps the metadata only the server sets.
fn preserve_identity(existing: &Value, new: &mut Value) {
    for field in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation", "resourceVersion"]
    {
        let value = existing["metadata"].get(field).cloned();
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            match value {
                Some(v) => meta.insert(field.into(), v),
                None => meta.remove(field),
            };
        } else if let Some(o) = new.as_object_mut() {
            o.insert("metadata".into(), existing["metadata"].clone());
        }
    }
    if new["metadata"].get("managedFields").is_none()
        && let Some(mf) = existing["metadata"].get("managedFields")
    {
        new["metadata"]["managedFields"] = mf.clone();
    }
}

/// The object without metadata and status: what `generation` counts.
fn strip_meta(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

fn set_field(object: &mut Value, field: &str, value: Option<&Value>) {
    if let Some(o) = object.as_object_mut() {
        match value {
            Some(v) => o.insert(field.into(), v.clone()),
            None => o.remove(field),
        };
    }
}

/// Records `manager` in `metadata.managedFields`, one entry per manager,
/// operation and subresource.
fn record_manager(object: &mut Value, kind: &ResourceKind, manager: &str, operation: &str, part: Part) {
    let subresource = if part == Part::Status { "status" } else { "" };
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": kind.api_version(),
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    });
    if !subresource.is_empty() {
        entry["subresource"] = json!(subresource);
    }
    let mut fields: Vec<Value> = object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    fields.retain(|e| {
        !(e["manager"] == manager
            && e["operation"] == operation
            && e["subresource"].as_str().unwrap_or_default() == subresource)
    });
    fields.push(entry);
    object["metadata"]["managedFields"] = Value::Array(fields);
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(target) = target.as_object_mut() {
        for (k, v) in patch {
            if v.is_null() {
                target.remove(k);
            } else {
                merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// RFC 6902 with add, remove, replace and test.
fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch.as_array().ok_or("a JSON patch must be an array")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("a JSON patch operation needs a path")?;
        let (parent, last) = match path.rfind('/') {
            Some(i) => (&path[..i], unescape(&path[i + 1..])),
            None => return Err(format!("bad JSON pointer {path:?}")),
        };
        match op["op"].as_str() {
            Some("test") => {
                if target.pointer(path) != Some(&op["value"]) {
                    return Err(format!("test failed at {path}"));
                }
            }
            Some(kind @ ("add" | "replace" | "remove")) => {
                let container = target.pointer_mut(parent).ok_or_else(|| format!("no such path {parent:?}"))?;
                match container {
                    Value::Object(map) => {
                        if kind == "remove" || kind == "replace" {
                            map.remove(&last).ok_or_else(|| format!("no such path {path:?}"))?;
                        }
                        if kind != "remove" {
                            map.insert(last, op["value"].clone());
                        }
                    }
                    Value::Array(items) => {
                        let index = if last == "-" {
                            items.len()
                        } else {
                            last.parse().map_err(|_| format!("bad index {last:?}"))?
                        };
                        match kind {
                            "add" if index <= items.len() => items.insert(index, op["value"].clone()),
                            "replace" if index < items.len() => items[index] = op["value"].clone(),
                            "remove" if index < items.len() => {
                                items.remove(index);
                            }
                            _ => return Err(format!("index out of range at {path:?}")),
                        }
                    }
                    _ => return Err(format!("{parent:?} is not a container")),
                }
            }
            other => return Err(format!("unsupported JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Lowercase RFC 1123 subdomain.
fn valid_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= 253
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

/// Five characters for `generateName`, from a counter.
fn suffix(n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`, the way `metav1.Time` is written.
#[must_use]
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
    }

    fn cm_kind() -> ResourceKind {
        ResourceKind::namespaced("", "v1", "ConfigMap", "configmaps")
    }

    #[test]
    fn versions_increase_and_history_is_bounded() {
        let mut s = Store::new(2);
        for n in ["a", "b", "c"] {
            s.create(&cm_kind(), "ns", cm(n), None, false).unwrap();
        }
        assert_eq!(s.resource_version(), 3);
        assert!(matches!(s.changes_since(0), Err(Error::Expired { requested: 0, oldest: 1 })));
        assert_eq!(s.changes_since(1).unwrap().map(|c| c.rv).collect::<Vec<_>>(), vec![2, 3]);
        s.expire_history();
        assert!(s.changes_since(2).is_err());
        assert_eq!(s.changes_since(3).unwrap().count(), 0);
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"a": [1, 2], "b": "x"});
        json_patch(
            &mut t,
            &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "remove", "path": "/b"},
                                     {"op": "test", "path": "/a/0", "value": 1}]),
        )
        .unwrap();
        assert_eq!(t, json!({"a": [1, 2, 3]}));
        assert!(json_patch(&mut t, &json!([{"op": "test", "path": "/a/0", "value": 9}])).is_err());
    }

    #[test]
    fn timestamp_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}
