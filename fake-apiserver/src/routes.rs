//! HTTP: the Kubernetes REST paths, mapped onto the store and watches.
//!
//! ```text
//! /api/v1/{plural}[/{name}[/status]]                          core, cluster-scoped or all namespaces
//! /api/v1/namespaces/{ns}/{plural}[/{name}[/status]]          core, namespaced
//! /apis/{group}/{version}/...                                 same shapes for named groups
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Error;
use crate::kinds::ResourceKind;
use crate::record::{WRITER_HEADER, WriteRecord};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::{DeleteOptions, Part, PatchKind};
use crate::watch::{self, Start, WatchRequest};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// What a path names.
#[derive(Debug)]
struct Target {
    kind: ResourceKind,
    namespace: Option<String>,
    name: Option<String>,
    part: Part,
}

/// The request, as the routes need it.
#[derive(Debug)]
struct Request<'a> {
    method: &'a Method,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let path_and_query = uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string);
    let (delay, failure) = {
        let mut state = shared.lock();
        (state.faults.delay(), state.faults.take_failure(&path_and_query))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let request = Request { method: &method, query: &query, headers: &headers, body: &body };
    if let Ok(target) = parse_path(&shared, uri.path()) {
        let access = access_of(&target, &request);
        shared.lock().accesses.push(access);
    }
    let response = match failure {
        Some(code) => error_response(&Error::Injected { code }),
        None => route(&shared, uri.path(), &request).unwrap_or_else(|e| error_response(&e)),
    };
    let is_write = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(&method);
    if is_write {
        let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut state = shared.lock();
        let record = WriteRecord {
            seq: state.writes.len() as u64,
            method: method.to_string(),
            path: path_and_query,
            writer: header_text(WRITER_HEADER),
            user_agent: header_text(header::USER_AGENT.as_str()),
            field_manager: query.get("fieldManager").cloned(),
            body: serde_json::from_slice(&body).ok(),
            status: response.status().as_u16(),
            started,
            finished: Instant::now(),
        };
        state.writes.push(record);
        drop(state);
        shared.notify();
    }
    response
}

fn route(shared: &Arc<Shared>, path: &str, request: &Request<'_>) -> Result<Response, Error> {
    let target = parse_path(shared, path)?;
    let namespace = target.namespace.as_deref().unwrap_or_default();
    let is_watch = request.query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let result = match (request.method.clone(), target.name.as_deref()) {
        (Method::GET, None) if is_watch => return watch_response(shared, &target, request.query),
        (Method::GET, None) => list(shared, &target, request.query),
        (Method::GET, Some(name)) => {
            let state = shared.lock();
            let found = state.store.get(&target.kind, namespace, name).cloned();
            found
                .map(|o| (StatusCode::OK, o))
                .ok_or_else(|| Error::NotFound { resource: target.kind.plural.clone(), name: name.to_owned() })
        }
        (Method::POST, None) if target.namespace.is_some() || !target.kind.namespaced => {
            let object = parse_body(request.body)?;
            let manager = manager(request, "Update");
            let mut state = shared.lock();
            let manager = manager.as_ref().map(|(m, o)| (m.as_str(), *o));
            state.store.create(&target.kind, namespace, object, manager, false).map(|o| (StatusCode::CREATED, o))
        }
        (Method::PUT, Some(name)) => {
            let object = parse_body(request.body)?;
            let manager = manager(request, "Update");
            let mut state = shared.lock();
            let manager = manager.as_ref().map(|(m, o)| (m.as_str(), *o));
            state
                .store
                .replace(&target.kind, namespace, name, object, target.part, manager)
                .map(|o| (StatusCode::OK, o))
        }
        (Method::PATCH, Some(name)) => patch(shared, &target, name, request),
        (Method::DELETE, Some(name)) => {
            let options = delete_options(request)?;
            let mut state = shared.lock();
            state.store.delete(&target.kind, namespace, name, &options).map(|o| (StatusCode::OK, o))
        }
        _ => Err(Error::MethodNotAllowed),
    };
    let (code, object) = result?;
    shared.notify();
    Ok(json_response(code, &object))
}

/// The request as RBAC names it.
fn access_of(target: &Target, request: &Request<'_>) -> crate::record::Access {
    let is_watch = request.query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (request.method.clone(), target.name.is_some()) {
        (Method::GET, true) => "get",
        (Method::GET, false) if is_watch => "watch",
        (Method::GET, false) => "list",
        (Method::POST, _) => "create",
        (Method::PUT, _) => "update",
        (Method::PATCH, _) => "patch",
        (Method::DELETE, true) => "delete",
        (Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    };
    let resource = match target.part {
        Part::Main => target.kind.plural.clone(),
        Part::Status => format!("{}/status", target.kind.plural),
    };
    crate::record::Access {
        writer: request.headers.get(WRITER_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned),
        verb: verb.to_owned(),
        group: target.kind.group.clone(),
        resource,
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    }
}

/// Resolves `/api/...` and `/apis/...` against the registry.
fn parse_path(shared: &Shared, path: &str) -> Result<Target, Error> {
    let unknown = || Error::UnknownResource(path.to_owned());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(unknown()),
    };
    let state = shared.lock();
    let registry = state.store.registry();
    let namespaced_collection = match rest {
        ["namespaces", _, plural, ..] => registry.get(group, version, plural).filter(|k| k.namespaced),
        _ => None,
    };
    let (kind, namespace, tail) = match (namespaced_collection, rest) {
        (Some(kind), ["namespaces", ns, _, tail @ ..]) => (kind, Some((*ns).to_owned()), tail),
        (_, [plural, tail @ ..]) => (registry.get(group, version, plural).ok_or_else(unknown)?, None, tail),
        _ => return Err(unknown()),
    };
    let (name, part) = match tail {
        [] => (None, Part::Main),
        [name] => (Some((*name).to_owned()), Part::Main),
        [name, "status"] if kind.status_subresource => (Some((*name).to_owned()), Part::Status),
        _ => return Err(unknown()),
    };
    if kind.namespaced && namespace.is_none() && name.is_some() {
        return Err(unknown());
    }
    Ok(Target { kind: kind.clone(), namespace, name, part })
}

fn selectors(query: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), Error> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))?;
    Ok((labels, fields))
}

/// A list with the current resourceVersion, in pages when `limit` asks:
/// the rest of the list is kept as of the first page's version (a
/// consistent snapshot, as the real server serves from etcd) behind the
/// `continue` token; an unknown or forgotten token is 410 Expired, after
/// which a client lists again from the start.
fn list(shared: &Shared, target: &Target, query: &HashMap<String, String>) -> Result<(StatusCode, Value), Error> {
    let (labels, fields) = selectors(query)?;
    let limit = query
        .get("limit")
        .map(|l| l.parse::<usize>().map_err(|_| Error::BadRequest(format!("invalid limit: {l:?}"))))
        .transpose()?
        .filter(|l| *l > 0);
    let mut state = shared.lock();
    let (mut items, version) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let page = state.pages.take(token).ok_or(Error::ContinueExpired)?;
            (page.rest, page.version)
        }
        None => {
            let items = state.store.list(&target.kind, target.namespace.as_deref(), &labels, &fields);
            (items.into(), state.store.resource_version())
        }
    };
    let mut metadata = json!({ "resourceVersion": version.to_string() });
    if let Some(limit) = limit
        && items.len() > limit
    {
        let rest = items.split_off(limit);
        metadata["remainingItemCount"] = json!(rest.len());
        metadata["continue"] = json!(state.pages.keep(version, rest));
    }
    Ok((
        StatusCode::OK,
        json!({
            "kind": format!("{}List", target.kind.kind),
            "apiVersion": target.kind.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    ))
}

fn watch_response(shared: &Arc<Shared>, target: &Target, query: &HashMap<String, String>) -> Result<Response, Error> {
    let (labels, fields) = selectors(query)?;
    let initial_events = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let start = match query.get("resourceVersion").map(String::as_str) {
        _ if initial_events => Start::Current,
        None | Some("" | "0") => Start::Current,
        Some(v) => Start::After(v.parse().map_err(|_| Error::BadRequest(format!("invalid resource version: {v:?}")))?),
    };
    let timeout = query
        .get("timeoutSeconds")
        .map(|t| t.parse().map_err(|_| Error::BadRequest(format!("invalid timeoutSeconds: {t:?}"))))
        .transpose()?
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let request = WatchRequest {
        kind: target.kind.clone(),
        namespace: target.namespace.clone(),
        labels,
        fields,
        start,
        bookmarks: query.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
        initial_events_end: initial_events,
        timeout,
    };
    let body = Body::from_stream(watch::stream(shared.clone(), request));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn patch(shared: &Shared, target: &Target, name: &str, request: &Request<'_>) -> Result<(StatusCode, Value), Error> {
    let content_type = request.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let patch_kind = match media {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => PatchKind::Merge,
        "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
        "application/json-patch+json" => PatchKind::Json,
        other => return Err(Error::UnsupportedMediaType(other.to_owned())),
    };
    let operation = if patch_kind == PatchKind::Apply { "Apply" } else { "Update" };
    let manager = manager(request, operation);
    if patch_kind == PatchKind::Apply && request.query.get("fieldManager").is_none_or(String::is_empty) {
        return Err(Error::Invalid {
            resource: target.kind.plural.clone(),
            name: name.to_owned(),
            reason: "fieldManager: Required value: is required for apply patch".into(),
        });
    }
    let body = parse_body(request.body)?;
    let namespace = target.namespace.as_deref().unwrap_or_default();
    let mut state = shared.lock();
    let manager = manager.as_ref().map(|(m, o)| (m.as_str(), *o));
    let (object, created) =
        state.store.patch(&target.kind, namespace, name, &body, patch_kind, target.part, manager)?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, object))
}

/// The field manager of a write: `fieldManager`, else the user agent's
/// program name, as the real server defaults it.
fn manager(request: &Request<'_>, operation: &'static str) -> Option<(String, &'static str)> {
    let from_agent = || {
        let agent = request.headers.get(header::USER_AGENT)?.to_str().ok()?;
        agent.split('/').next().map(str::to_owned)
    };
    let manager = request.query.get("fieldManager").filter(|m| !m.is_empty()).cloned().or_else(from_agent)?;
    Some((manager, operation))
}

fn delete_options(request: &Request<'_>) -> Result<DeleteOptions, Error> {
    let body: Value = if request.body.is_empty() { json!({}) } else { parse_body(request.body)? };
    let policy = body["propagationPolicy"].as_str().or(request.query.get("propagationPolicy").map(String::as_str));
    Ok(DeleteOptions {
        uid: body["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: body["preconditions"]["resourceVersion"].as_str().map(str::to_owned),
        orphan: policy == Some("Orphan"),
    })
}

fn parse_body(body: &Bytes) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("the body is not JSON: {e}")))
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn error_response(error: &Error) -> Response {
    let code = StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &error.to_status())
}
