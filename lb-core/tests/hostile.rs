//! Input that is hostile or merely odd: alias bombs, duplicate keys,
//! terminal escapes in names, large configurations. Each must give the
//! operator a clear message in our words, never the parser's internals.

use lb_core::config::{self, ConfigError, ConfigErrorKind as K};
use lb_core::manifest;

fn load_err(text: &str) -> Vec<ConfigError> {
    match config::load(&[("c.yaml", text)]) {
        Ok(_) => panic!("should not load:\n{text}"),
        Err(e) => e,
    }
}

/// A "billion laughs": nine levels of nine aliases each, about 500 bytes.
fn alias_bomb() -> String {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let prev = format!("*a{}", level - 1);
        let items = [prev.as_str(); 9].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    text
}

#[test]
fn an_alias_bomb_stops_with_our_message() {
    let bomb = alias_bomb();
    assert!(bomb.len() < 600, "{}", bomb.len());
    let errors = load_err(&bomb);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0].to_string();
    assert!(message.starts_with("c.yaml: -: -: invalid YAML: too many aliases"), "{message}");
    assert!(message.contains(" at line "), "{message}");
    assert!(!message.contains("RecordedAnchor") && !message.contains("Budget"), "{message}");
    let err = manifest::services(&bomb).expect_err("a bomb is no Service list").to_string();
    assert!(err.contains("too many aliases"), "{err}");
}

#[test]
fn a_bomb_in_a_legacy_configmap_stops_too() {
    let indented: String = alias_bomb().lines().map(|l| format!("    {l}\n")).collect();
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config, namespace: metallb-system}}\ndata:\n  config: |\n{indented}"
    );
    let errors = load_err(&text);
    assert!(errors.iter().any(|e| e.to_string().contains("too many aliases")), "{errors:?}");
}

#[test]
fn small_anchors_still_work() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata: {name: a, labels: &l {zone: a}}\n  spec: {addresses: [192.0.2.0/28]}\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata: {name: b, labels: *l}\n  spec: {addresses: [192.0.2.16/28]}\n";
    let loaded = config::load(&[("c.yaml", text)]).expect("valid");
    assert_eq!(loaded.config.pools[1].labels.get("zone").map(String::as_str), Some("a"));
}

#[test]
fn duplicate_keys_are_named_in_our_words() {
    let text = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec:\n  addresses: [192.0.2.0/28]\n  addresses: [192.0.2.16/28]\n";
    let errors = load_err(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let K::Yaml(message) = &errors[0].kind else { panic!("{errors:?}") };
    assert!(message.starts_with("duplicate key `addresses` at line 6, column"), "{message}");
    assert!(!message.contains("DuplicateKeyPolicy"), "{message}");
}

#[test]
fn a_hundred_thousand_pools_load() {
    let mut text = String::new();
    for i in 0..100_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        text.push_str(&format!(
            "---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: p{i}}}\nspec: {{addresses: [{ip}/32]}}\n"
        ));
    }
    let loaded = config::load(&[("c.yaml", &text)]).expect("valid");
    assert_eq!(loaded.config.pools.len(), 100_000);
}

/// Item 11's measurement, not a test: how long validation takes for many
/// /32 blocks across pools. Run with
/// `cargo test --release -p lb-core --test hostile -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement; run by hand in release mode"]
fn measure_overlap_check() {
    for n in [10_000u32, 20_000, 40_000, 80_000] {
        let mut text = String::new();
        for pool in 0..n / 100 {
            text.push_str(&format!(
                "---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: p{pool}}}\nspec:\n  addresses:\n"
            ));
            for i in 0..100 {
                let ip = std::net::Ipv4Addr::from(0x0a00_0000 + pool * 100 + i);
                text.push_str(&format!("  - {ip}/32\n"));
            }
        }
        let mut errors = Vec::new();
        let (resources, _) = config::read(&[("c.yaml", &text)], &mut errors);
        let start = std::time::Instant::now();
        let built = config::build::build(&resources, &mut errors);
        println!("{n} blocks: build {:?}", start.elapsed());
        assert!(errors.is_empty() && built.pools.len() == (n / 100) as usize);
    }
}

#[test]
fn names_must_be_kubernetes_names_and_are_shown_escaped() {
    let pool = |name: &str| {
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: \"{name}\"}}\nspec: {{addresses: [192.0.2.0/28]}}\n"
        )
    };
    for name in ["\\e[2Jevil", "two words", "My_Pool", &"a".repeat(300)] {
        let errors = load_err(&pool(name));
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert_eq!(errors[0].field, "metadata.name", "{name}");
        assert!(matches!(errors[0].kind, K::InvalidName(_)), "{name}: {errors:?}");
        let line = errors[0].to_string();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.chars().count() < 300, "{line}");
    }
    let line = load_err(&pool("\\e[2Jevil"))[0].to_string();
    assert!(line.starts_with("c.yaml: IPAddressPool/\\u{1b}[2Jevil: metadata.name: "), "{line}");
    // Values echoed back are escaped too.
    let peer = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {myASN: 1, peerASN: 2, peerAddress: \"\\e[2J\"}\n";
    let line = load_err(&format!("{}---\n{peer}", pool("a")))[0].to_string();
    assert!(line.contains("\\u{1b}[2J") && !line.contains('\u{1b}'), "{line}");
}

#[test]
fn service_and_namespace_names_are_rfc_1123_labels() {
    let service = |name: &str, namespace: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: \"{name}\", namespace: \"{namespace}\"}}\n")
    };
    assert!(manifest::services(&service("web", "shop")).is_ok());
    for (name, namespace, field) in [
        ("\\e[2J", "shop", "metadata.name"),
        ("a.b", "shop", "metadata.name"),
        ("web", "Shop", "metadata.namespace"),
        (&"a".repeat(64), "shop", "metadata.name"),
    ] {
        let err = manifest::services(&service(name, namespace)).expect_err(name).to_string();
        assert!(err.contains(&format!(": {field}: ")), "{err}");
        assert!(!err.chars().any(char::is_control), "{err:?}");
    }
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: \"a b\"}\n";
    assert!(manifest::namespaces(ns).is_err());
}
