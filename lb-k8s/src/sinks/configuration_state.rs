//! The `ConfigurationState` object of a component (MetalLB 0.15's): whether
//! the configuration it runs with is valid, with the errors, plus a
//! Warning Event (`InvalidConfiguration`) on each object an error names.
//! Written only when the outcome changes, and not at all on a restart
//! that finds it already right.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use lb_core::config::ConfigError;
use lb_core::writeback::{EventType, ServiceEvent};

use crate::sinks::events::Events;
use serde_json::{Value, json};
use tracing::warn;

use crate::sources::cluster::ConfigSources;
use crate::view::error_chain;

/// One component's ConfigurationState.
#[derive(Debug)]
pub struct ConfigurationState {
    namespace: String,
    name: String,
    labels: serde_json::Map<String, Value>,
    field_manager: String,
    /// What the object says, as last written (errors: Invalid).
    last: Option<Result<(), Vec<String>>>,
    /// The errors whose Warning Events were recorded (kept apart from
    /// `last`: a write that fails is made again, its Events are not).
    reported: Vec<String>,
}

impl ConfigurationState {
    /// `name` in `namespace`, with `labels` (a speaker's names its node).
    pub fn new(namespace: &str, name: &str, labels: &[(&str, &str)], field_manager: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            labels: labels.iter().map(|(k, v)| ((*k).to_string(), json!(v))).collect(),
            field_manager: field_manager.into(),
            last: None,
            reported: Vec::new(),
        }
    }

    /// Another writer may have changed it: the next report checks again.
    pub fn forget(&mut self) {
        self.last = None;
        self.reported.clear();
    }

    /// Says `outcome`: the object when it changed, an Event per new error.
    /// Whether the object says it now (false: a write failed; report again).
    pub async fn report(
        &mut self,
        client: &Client,
        events: &Events,
        sources: &ConfigSources,
        outcome: Result<(), &[ConfigError]>,
    ) -> bool {
        let texts = outcome.map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>());
        if self.last.as_ref() == Some(&texts) {
            return true;
        }
        let first = self.last.is_none();
        self.last = Some(texts.clone());
        let gvk = GroupVersionKind::gvk("metallb.io", "v1beta1", "ConfigurationState");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "configurationstates");
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), &self.namespace, &resource);
        let summary = match &texts {
            Ok(()) => String::new(),
            Err(errors) => errors.join("\n"),
        };
        let result = if texts.is_ok() { "Valid" } else { "Invalid" };
        if first && let Ok(current) = api.get(&self.name).await {
            // A restart: what an earlier run wrote may be right already.
            let status = current.data.get("status");
            let same = status.and_then(|s| s.get("result")).and_then(Value::as_str) == Some(result)
                && status.and_then(|s| s.get("errorSummary")).and_then(Value::as_str).unwrap_or_default() == summary;
            if same {
                self.reported = texts.err().unwrap_or_default();
                return true;
            }
        }
        let object = json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "ConfigurationState",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
        });
        let params = PatchParams::apply(&self.field_manager).force();
        if let Err(e) = api.patch(&self.name, &params, &Patch::Apply(&object)).await {
            warn!(event = "configurationStateNotWritten", error = %error_chain(&e), "cannot write the ConfigurationState");
            self.last = None;
            return false;
        }
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let (valid, reason) =
            if texts.is_ok() { ("True", "ConfigurationValid") } else { ("False", "ConfigurationInvalid") };
        let status = json!({"result": result, "errorSummary": summary, "conditions": [
            {"type": "Valid", "status": valid, "reason": reason, "message": summary, "lastTransitionTime": now}]});
        if let Err(e) =
            api.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&json!({"status": status}))).await
        {
            warn!(event = "configurationStateNotWritten", error = %error_chain(&e), "cannot write the ConfigurationState");
            self.last = None;
        }
        let written = self.last.is_some();
        let Err(errors) = outcome else {
            self.reported.clear();
            return written;
        };
        let before = std::mem::take(&mut self.reported);
        for error in errors.iter().filter(|e| !before.contains(&e.to_string())) {
            let Some(reference) = sources.object_ref(&error.object) else { continue };
            let event = ServiceEvent {
                event_type: EventType::Warning,
                reason: "InvalidConfiguration",
                message: format!("{}: {} (the last valid configuration stays in force)", error.field, error.kind),
            };
            events.record(reference, &event);
        }
        self.reported = errors.iter().map(ToString::to_string).collect();
        written
    }
}
