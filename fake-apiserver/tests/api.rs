//! Reads and writes through kube's real `Client` and `Api`.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use fake_apiserver::{FakeApiServer, ResourceKind};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "data": data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
    }))
    .unwrap()
}

/// The `Status` code and reason kube decoded from an error answer.
fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_get_list_and_errors() {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    let created = api.create(&PostParams::default(), &config_map("a", &[("k", "v")])).await.unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.resource_version.as_deref(), Some("1"));
    assert_eq!(meta.namespace.as_deref(), Some("ns"));

    let got = api.get("a").await.unwrap();
    assert_eq!(got.data, created.data);
    assert_eq!(
        api_error(api.create(&PostParams::default(), &config_map("a", &[])).await),
        (409, "AlreadyExists".into())
    );
    assert_eq!(api_error(api.get("missing").await), (404, "NotFound".into()));
    assert_eq!(api_error(api.create(&PostParams::default(), &config_map("Bad_Name", &[])).await).0, 422);

    let mut generated = config_map("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let generated = api.create(&PostParams::default(), &generated).await.unwrap();
    assert!(generated.metadata.name.as_deref().is_some_and(|n| n.starts_with("gen-") && n.len() == 9));

    // Another namespace, then list per namespace and across namespaces.
    let other: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "other");
    other.create(&PostParams::default(), &config_map("b", &[])).await.unwrap();
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.metadata.resource_version.as_deref(), Some("3"));
    let all: Api<ConfigMap> = Api::all(server.client().unwrap());
    assert_eq!(all.list(&ListParams::default()).await.unwrap().items.len(), 3);
}

#[tokio::test]
async fn update_with_a_stale_version_conflicts() {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    let first = api.create(&PostParams::default(), &config_map("a", &[("k", "1")])).await.unwrap();

    let mut second = first.clone();
    second.data = Some([("k".to_string(), "2".to_string())].into());
    let second = api.replace("a", &PostParams::default(), &second).await.unwrap();
    assert_ne!(second.metadata.resource_version, first.metadata.resource_version);
    assert_eq!(second.metadata.uid, first.metadata.uid);

    // `first` carries the old resourceVersion: the write must lose.
    assert_eq!(api_error(api.replace("a", &PostParams::default(), &first).await), (409, "Conflict".into()));
    assert_eq!(server.get::<ConfigMap>("ns", "a").unwrap().unwrap().data, second.data);
    // A merge patch carrying the old version conflicts too.
    let stale = json!({"metadata": {"resourceVersion": first.metadata.resource_version}, "data": {"k": "3"}});
    assert_eq!(api_error(api.patch("a", &PatchParams::default(), &Patch::Merge(&stale)).await).0, 409);
}

#[tokio::test]
async fn merge_patch_json_patch_and_apply() {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    api.create(&PostParams::default(), &config_map("a", &[("keep", "1"), ("drop", "2")])).await.unwrap();

    let patch = json!({"data": {"drop": null, "new": "3"}});
    let patched = api.patch("a", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let keys: Vec<_> = patched.data.unwrap().into_keys().collect();
    assert_eq!(keys, ["keep", "new"]);

    // JSON patch through a raw request (kube's `Patch::Json` needs its `jsonpatch` feature).
    let ops = json!([{"op": "test", "path": "/data/new", "value": "3"}, {"op": "replace", "path": "/data/keep", "value": "9"}]);
    let request = axum::http::Request::patch("/api/v1/namespaces/ns/configmaps/a")
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&ops).unwrap())
        .unwrap();
    let patched: ConfigMap = server.client().unwrap().request(request).await.unwrap();
    assert_eq!(patched.data.unwrap()["keep"], "9");

    // Apply creates when absent, merges when present, and records the manager.
    let params = PatchParams::apply("lb-controller").force();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
    let c = api.patch("c", &params, &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(c.data.unwrap()["x"], "1");
    api.create(&PostParams::default(), &config_map("b", &[("x", "1")])).await.unwrap();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"y": "2"}});
    let b = api.patch("b", &params, &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(b.data.as_ref().map(BTreeMap::len), Some(2));
    let managers: Vec<_> = b.metadata.managed_fields.unwrap().into_iter().map(|m| (m.manager, m.operation)).collect();
    assert!(managers.contains(&(Some("lb-controller".into()), Some("Apply".into()))), "{managers:?}");
    let record = server.writes();
    assert_eq!(record.last().and_then(|w| w.field_manager.as_deref()), Some("lb-controller"));
}

#[tokio::test]
async fn status_is_a_subresource() {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<Service> = Api::namespaced(server.client().unwrap(), "ns");
    let ingress = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"}, "spec": {"type": "LoadBalancer"}, "status": ingress,
    }))
    .unwrap();
    // A client's create drops status.
    let created = api.create(&PostParams::default(), &service).await.unwrap();
    assert!(created.status.is_none());

    // /status changes status only.
    let patch = json!({"metadata": {"labels": {"ignored": "yes"}}, "spec": {"type": "ClusterIP"}, "status": ingress});
    let after = api.patch_status("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert_eq!(serde_json::to_value(&after.status).unwrap(), ingress);
    assert_eq!(after.spec.as_ref().and_then(|s| s.type_.as_deref()), Some("LoadBalancer"));
    assert!(after.metadata.labels.is_none());

    // The main resource cannot change status.
    let mut replaced = after.clone();
    replaced.status = None;
    replaced.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let replaced = api.replace("web", &PostParams::default(), &replaced).await.unwrap();
    assert_eq!(serde_json::to_value(&replaced.status).unwrap(), ingress);
    assert!(replaced.metadata.labels.is_some());

    // Kinds without a status subresource have no /status.
    let maps: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    maps.create(&PostParams::default(), &config_map("a", &[])).await.unwrap();
    let result = maps.patch_status("a", &PatchParams::default(), &Patch::Merge(json!({"status": {}}))).await;
    assert_eq!(api_error(result).0, 404);
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents() {
    let server = FakeApiServer::start().await.unwrap();
    let client = server.client().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ns");
    let maps: Api<ConfigMap> = Api::namespaced(client, "ns");
    let pod = |name: &str| serde_json::from_value::<Pod>(json!({"metadata": {"name": name}})).unwrap();
    let owner = pods.create(&PostParams::default(), &pod("owner")).await.unwrap();
    let other = pods.create(&PostParams::default(), &pod("other")).await.unwrap();
    let owned_by = |name: &str, owners: &[&Pod]| {
        let refs: Vec<_> = owners
            .iter()
            .map(|p| json!({"apiVersion": "v1", "kind": "Pod", "name": p.metadata.name, "uid": p.metadata.uid}))
            .collect();
        serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": name, "ownerReferences": refs}})).unwrap()
    };
    maps.create(&PostParams::default(), &owned_by("only-owner", &[&owner])).await.unwrap();
    maps.create(&PostParams::default(), &owned_by("two-owners", &[&owner, &other])).await.unwrap();
    maps.create(&PostParams::default(), &config_map("unowned", &[])).await.unwrap();

    let deleted = pods.delete("owner", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_left());
    assert_eq!(api_error(pods.get("owner").await).0, 404);
    let names: Vec<_> = server.list::<ConfigMap>().unwrap().into_iter().filter_map(|c| c.metadata.name).collect();
    assert_eq!(names, ["two-owners", "unowned"]);

    pods.delete("other", &DeleteParams::default()).await.unwrap();
    assert!(server.get::<ConfigMap>("ns", "two-owners").unwrap().is_none());
    assert_eq!(api_error(pods.delete("other", &DeleteParams::default()).await).0, 404);
}

#[tokio::test]
async fn finalizers_hold_a_delete_until_removed() {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    let mut cm = config_map("a", &[]);
    cm.metadata.finalizers = Some(vec!["lb/finalizer".into()]);
    api.create(&PostParams::default(), &cm).await.unwrap();
    let marked = api.delete("a", &DeleteParams::default()).await.unwrap().left().unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    let patch = json!({"metadata": {"finalizers": null}});
    api.patch("a", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    assert!(server.get::<ConfigMap>("ns", "a").unwrap().is_none());
}

#[tokio::test]
async fn label_and_field_selectors() {
    let server = FakeApiServer::start().await.unwrap();
    for (name, app, node, phase) in
        [("a", "web", "n1", "Running"), ("b", "web", "n2", "Pending"), ("c", "db", "n1", "Running")]
    {
        let labels = if app == "db" { json!({"app": app}) } else { json!({"app": app, "tier": "front"}) };
        server
            .seed(&json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "ns", "labels": labels},
                "spec": {"nodeName": node, "containers": []}, "status": {"phase": phase}}))
            .unwrap();
    }
    let api: Api<Pod> = Api::namespaced(server.client().unwrap(), "ns");
    let names = |params: ListParams| {
        let api = api.clone();
        async move {
            let list = api.list(&params).await.unwrap();
            list.items.into_iter().filter_map(|p| p.metadata.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(names(ListParams::default().labels("app=web")).await, ["a", "b"]);
    assert_eq!(names(ListParams::default().labels("app==db")).await, ["c"]);
    assert_eq!(names(ListParams::default().labels("app!=web")).await, ["c"]);
    assert_eq!(names(ListParams::default().labels("app in (db,cache)")).await, ["c"]);
    assert_eq!(names(ListParams::default().labels("app notin (db)")).await, ["a", "b"]);
    assert_eq!(names(ListParams::default().labels("tier")).await, ["a", "b"]);
    assert_eq!(names(ListParams::default().labels("!tier")).await, ["c"]);
    assert_eq!(names(ListParams::default().fields("spec.nodeName=n1")).await, ["a", "c"]);
    assert_eq!(
        names(ListParams::default().fields("spec.nodeName=n1,status.phase!=Running")).await,
        Vec::<String>::new()
    );
    assert_eq!(names(ListParams::default().fields("metadata.name=b")).await, ["b"]);
    assert_eq!(names(ListParams::default().fields("metadata.namespace=ns").labels("app=web")).await, ["a", "b"]);
    let bad = api.list(&ListParams::default().labels("app in db")).await;
    assert_eq!(api_error(bad).0, 400);
}

#[tokio::test]
async fn custom_resources_registered_at_run_time() {
    let server = FakeApiServer::start().await.unwrap();
    server.register(ResourceKind::namespaced("metallb.io", "v1beta1", "IPAddressPool", "ipaddresspools").with_status());
    let gvk = GroupVersionKind::gvk("metallb.io", "v1beta1", "IPAddressPool");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "ipaddresspools");
    let api: Api<DynamicObject> = Api::namespaced_with(server.client().unwrap(), "metallb-system", &resource);
    let pool: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "pool"}, "spec": {"addresses": ["192.0.2.0/28"]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &pool).await.unwrap();
    let status = json!({"status": {"availableIPv4": 16}});
    let after = api.patch_status("pool", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    assert_eq!(after.data["status"]["availableIPv4"], 16);
    assert_eq!(after.data["spec"]["addresses"][0], "192.0.2.0/28");
    assert_eq!(api.list(&ListParams::default()).await.unwrap().items.len(), 1);
}

/// `limit` pages a list; the pages after the first are the list as of the
/// first (a change in between does not show), an unknown token is 410,
/// and kube's watcher, which lists in pages, sees every object.
#[tokio::test]
async fn lists_come_in_pages_of_one_snapshot() {
    use futures_util::StreamExt;
    use kube::runtime::watcher;
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    for i in 0..7 {
        api.create(&PostParams::default(), &config_map(&format!("c{i}"), &[])).await.unwrap();
    }
    let first = api.list(&ListParams::default().limit(3)).await.unwrap();
    let names = |l: &kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items.iter().map(|c| c.metadata.name.clone().unwrap()).collect()
    };
    assert_eq!(names(&first), ["c0", "c1", "c2"]);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let token = first.metadata.continue_.clone().unwrap();
    api.create(&PostParams::default(), &config_map("c3a", &[])).await.unwrap();
    let second = api.list(&ListParams::default().limit(3).continue_token(&token)).await.unwrap();
    assert_eq!(names(&second), ["c3", "c4", "c5"], "the snapshot of the first page");
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
    let third =
        api.list(&ListParams::default().limit(3).continue_token(&second.metadata.continue_.clone().unwrap())).await;
    let third = third.unwrap();
    assert_eq!(names(&third), ["c6"]);
    assert_eq!(third.metadata.continue_, None);
    assert_eq!(
        api_error(api.list(&ListParams::default().limit(3).continue_token(&token)).await),
        (410, "Expired".into()),
        "a token is used once"
    );
    // The watcher's initial list, two objects a page.
    let mut seen = std::collections::BTreeSet::new();
    let mut stream = watcher(api.clone(), watcher::Config::default().page_size(2)).boxed();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            watcher::Event::InitApply(c) => {
                seen.insert(c.metadata.name.unwrap());
            }
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
}
