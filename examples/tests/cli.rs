//! The `lb` binary on YAML fixtures: exit codes, output formats, messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn lb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lb")).args(args).current_dir(root()).output().expect("run lb")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn plan_json(config: &str, services: &str) -> serde_json::Value {
    plan_json_with(config, services, &[])
}

/// `lb plan -o json` with more arguments (`--nodes`, `--endpoints`).
fn plan_json_with(config: &str, services: &str, more: &[&str]) -> serde_json::Value {
    let mut args = vec!["plan", "--config", config, "--services", services, "-o", "json"];
    args.extend_from_slice(more);
    let out = lb(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("plan prints JSON")
}

#[test]
fn check_config_summarises_every_object() {
    let out = lb(&["check-config", "config/metallb.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 8, "{text}");
    let out = lb(&["check-config", "config/legacy-configmap.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let text = format!("{text}{}", stdout(&out));
    assert!(text.contains("config/metallb.yaml: IPAddressPool/default: 2 block(s), 16 IPv4 and 256 IPv6 addresses"));
    assert!(text.contains("config/metallb.yaml: BGPPeer/tor: AS64512 to AS64512"));
    assert!(text.contains("ConfigMap/config -> BGPAdvertisement/bgpadvertisement1"));
    assert_eq!(text.lines().count(), 8 + 6, "{text}");
}

#[test]
fn check_config_reports_every_error_with_its_location() {
    let out = lb(&["check-config", "tests/fixtures/invalid.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let f = "tests/fixtures/invalid.yaml";
    for expected in [
        format!("{f}: IPAddressPool/web: spec.addresses[1]: range \"192.0.2.20-192.0.2.10\" is reversed"),
        format!("{f}: IPAddressPool/web: spec.autoAsign: unknown field"),
        format!(
            "{f}: IPAddressPool/overlapping: spec.addresses[0]: 192.0.2.8/29 overlaps 192.0.2.0/28 of pool \"web\""
        ),
        format!("{f}: BGPPeer/tor: spec.myASN: ASN 0 is not allowed"),
        format!("{f}: BGPPeer/tor: spec.dynamicASN: peerASN and dynamicASN are mutually exclusive"),
        format!("{f}: BGPPeer/tor: spec.holdTime: hold time 2s must be 0 or at least 3s"),
        format!("{f}: BGPAdvertisement/agg: spec.communities[0]:"),
        format!("{f}: BGPAdvertisement/agg: spec.communities[1]:"),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    for line in text.lines() {
        assert_eq!(line.splitn(4, ": ").count(), 4, "not FILE: KIND/NAME: FIELD: message: {line}");
    }
}

#[test]
fn legacy_errors_point_into_the_configmap() {
    let out = lb(&["check-config", "tests/fixtures/legacy-invalid.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for expected in [
        "ConfigMap/config: data.config.peers[0].hold-time: hold time 2s",
        "ConfigMap/config: data.config.peers[0].ebgp-multihop: ebgpMultiHop is set on an iBGP peer",
        "ConfigMap/config: data.config.address-pools[0].bgp-advertisements: bgp-advertisements are only allowed in bgp pools",
        "ConfigMap/config: data.config.address-pools[1].protocol: unknown protocol \"ospf\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn plan_json_has_the_documented_shape() {
    let plan = plan_json("config/metallb.yaml", "services.yaml");
    let services = plan["services"].as_array().expect("services");
    let find = |name: &str| services.iter().find(|s| s["service"] == name).cloned().expect(name);
    assert_eq!(find("shop/web")["ips"], serde_json::json!(["192.0.2.5"]));
    assert_eq!(find("shop/dns")["ips"], serde_json::json!(["192.0.2.5"]), "shares web's address");
    assert_eq!(find("shop/api")["ips"], serde_json::json!(["192.0.2.0", "2001:db8:1::"]));
    assert_eq!(find("payments/checkout")["pool"], "payments");
    assert_eq!(find("kube-system/ingress")["ips"], serde_json::json!(["203.0.113.70"]));
    assert_eq!(find("jobs/batch")["ips"], serde_json::json!(["198.51.100.10"]));
    assert!(find("jobs/batch")["error"].is_null());
    assert!(services.iter().all(|s| s["service"] != "shop/internal"), "ClusterIP Services are left out");
    let default = plan["pools"].as_array().expect("pools").iter().find(|p| p["name"] == "default").cloned();
    assert_eq!(
        default,
        Some(serde_json::json!({"name":"default","ipv4Total":16,"ipv4InUse":2,"ipv6Total":256,"ipv6InUse":1}))
    );
}

#[test]
fn plan_with_nodes_lists_each_nodes_bgp_routes() {
    let plan = plan_json_with("config/metallb.yaml", "services.yaml", &["--nodes", "nodes.yaml"]);
    let nodes = plan["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    let route = serde_json::json!({
        "prefix": "203.0.113.0/32", "localPref": 100,
        "communities": ["65535:65282"], "largeCommunities": ["64512:1:2"],
    });
    assert_eq!(nodes[0]["node"], "node-a");
    assert_eq!(nodes[0]["bgp"][0]["peer"], "127.0.0.1");
    let routes = nodes[0]["bgp"][0]["routes"].as_array().expect("routes");
    assert_eq!(routes.len(), 2, "payments and reserved are the pools announced over BGP: {routes:?}");
    assert_eq!(routes[0], route);
    assert_eq!(nodes[2]["node"], "node-c");
    assert_eq!(nodes[2]["bgp"][0]["routes"], serde_json::json!([]), "excluded from load balancers");

    // With endpoints: the ingress Service has none serving, so it is withdrawn everywhere.
    let plan = plan_json_with(
        "config/metallb.yaml",
        "services.yaml",
        &["--nodes", "nodes.yaml", "--endpoints", "endpoints.yaml"],
    );
    for node in &plan["nodes"].as_array().expect("nodes")[..2] {
        assert_eq!(node["bgp"][0]["routes"], serde_json::json!([route]), "{node}");
    }
}

#[test]
fn plan_table_is_for_people() {
    let out = lb(&["plan", "--config", "config/metallb.yaml", "--services", "services.yaml"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with("SERVICE"));
    assert!(text.lines().any(|l| l.starts_with("shop/web") && l.contains("192.0.2.5") && l.contains("default")));
}

#[test]
fn convert_then_plan_equals_plan() {
    let out = lb(&["convert", "config/legacy-configmap.yaml"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = std::env::temp_dir().join(format!("lb-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let converted = dir.join("converted.yaml");
    std::fs::write(&converted, &out.stdout).expect("write");
    let services = dir.join("services.yaml");
    std::fs::write(
        &services,
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: a, namespace: x}, spec: {type: LoadBalancer}}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b, namespace: x, annotations: {metallb.universe.tf/address-pool: bgp}}\n  spec: {type: LoadBalancer}\n",
    )
    .expect("write");
    let original = plan_json("config/legacy-configmap.yaml", services.to_str().expect("utf-8"));
    let again = plan_json(converted.to_str().expect("utf-8"), services.to_str().expect("utf-8"));
    assert_eq!(original, again);
    // Pool "bgp" sorts before "default"; avoid-buggy-ips skips 198.51.100.0.
    assert_eq!(original["services"][0]["ips"], serde_json::json!(["198.51.100.1"]));
    assert_eq!(original["services"][1]["ips"], serde_json::json!(["198.51.100.2"]));
    let check = lb(&["check-config", converted.to_str().expect("utf-8")]);
    assert!(check.status.success(), "converted output is valid: {}", stdout(&check));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_gives_a_message_not_a_panic() {
    let out = lb(&["plan", "--config", "tests/fixtures/invalid.yaml", "--services", "services.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("spec.addresses[1]"));
    let out = lb(&["plan", "--config", "config/metallb.yaml", "--services", "does-not-exist.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist.yaml"));
    let out = lb(&["check-config", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("Cargo.toml: -: -: invalid YAML"), "{}", stdout(&out));
    let out = lb(&["convert", "config/metallb.yaml"]);
    assert_eq!(out.status.code(), Some(1), "nothing legacy to convert");
    let out = lb(&["plan", "--config", "config/metallb.yaml"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
}

/// Writes `text` to a file of its own in a fresh temporary directory.
fn temp_file(test: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lb-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

const POOL_AND_PEER: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/28]}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor}\n";

#[test]
fn check_config_refuses_a_password_the_kernel_would() {
    let text = format!(
        "{POOL_AND_PEER}spec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, password: {}}}\n",
        "k".repeat(100)
    );
    let path = temp_file("password", &text);
    let file = path.to_str().expect("utf-8");
    let out = lb(&["check-config", file]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        format!("{file}: BGPPeer/tor: spec.password: password of 100 bytes; TCP MD5 keys are at most 80\n")
    );
    std::fs::remove_dir_all(path.parent().expect("dir")).ok();
}

#[test]
fn check_config_and_password_secrets() {
    let peer = format!(
        "{POOL_AND_PEER}spec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, passwordSecret: {{name: bgp}}}}\n"
    );
    // No Secret in the files: valid, with a note that the reference is not checked.
    let path = temp_file("secret-none", &peer);
    let file = path.to_str().expect("utf-8");
    let out = lb(&["check-config", file]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        format!(
            "note: {file}: BGPPeer/tor: spec.passwordSecret: Secret metallb-system/bgp is not checked (no Secret in the files)\nconfiguration is valid: 2 object(s)\n"
        )
    );
    assert!(stdout(&out).contains("BGPPeer/tor: AS64512 to AS64513 at 192.0.2.1 port 179, eBGP"), "{}", stdout(&out));

    // Another Secret given, not that one: an error, as the speaker would refuse it.
    let secret = |namespace: &str, password: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: bgp, namespace: {namespace}}}\ntype: kubernetes.io/basic-auth\nstringData: {{password: {password}}}\n"
        )
    };
    let path = temp_file("secret-missing", &format!("{peer}{}", secret("default", "x")));
    let file = path.to_str().expect("utf-8");
    let out = lb(&["check-config", file]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{file}: BGPPeer/tor: spec.passwordSecret.name: Secret metallb-system/bgp is not in the configuration files\n"
        )
    );

    // The Secret given, with a password over 80 bytes.
    let path = temp_file("secret-long", &format!("{peer}{}", secret("metallb-system", &"k".repeat(100))));
    let file = path.to_str().expect("utf-8");
    let out = lb(&["check-config", file]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "{file}: BGPPeer/tor: spec.passwordSecret: password of Secret metallb-system/bgp is 100 bytes"
        )),
        "{}",
        stdout(&out)
    );

    // The Secret given and fine: valid, no note, the Secret listed as before.
    let path = temp_file("secret-ok", &format!("{peer}{}", secret("metallb-system", "s3cret")));
    let file = path.to_str().expect("utf-8");
    let out = lb(&["check-config", file]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("note:"));
    assert!(stdout(&out).contains(&format!("{file}: Secret/bgp: skipped (not MetalLB configuration)")));
    for test in ["secret-none", "secret-missing", "secret-long", "secret-ok"] {
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("lb-cli-{}-{test}", std::process::id()))).ok();
    }
}

#[test]
fn plan_refuses_files_of_the_wrong_kind_as_check_config_does() {
    // Nodes given as Services: not "no Services", the wrong file.
    let out = lb(&["plan", "--config", "config/metallb.yaml", "--services", "nodes.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nodes.yaml: cannot read Services: no Service found (found 3 Node objects)"), "{stderr}");
    // Services given as configuration: the same error from plan and check-config.
    let expected =
        "services.yaml: -: -: no MetalLB configuration found (metallb.io resources or the legacy ConfigMap); found";
    let plan = lb(&["plan", "--config", "services.yaml", "--services", "services.yaml"]);
    let check = lb(&["check-config", "services.yaml"]);
    for out in [&plan, &check] {
        assert_eq!(out.status.code(), Some(1), "{}", stdout(out));
        assert!(stdout(out).starts_with(expected), "{}", stdout(out));
    }
    let empty = temp_file("empty-config", "# nothing yet\n");
    let out = lb(&["check-config", empty.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("no MetalLB configuration found"), "{}", stdout(&out));
    std::fs::remove_dir_all(empty.parent().expect("dir")).ok();
}

#[test]
fn plan_lists_a_service_given_twice_once_and_warns() {
    let out =
        lb(&["plan", "--config", "config/metallb.yaml", "--services", "services.yaml", "services.yaml", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let once = plan_json("config/metallb.yaml", "services.yaml");
    assert_eq!(plan, once, "the later copy replaces the earlier one: one answer per Service");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("warning: services.yaml: document[")
            && l.contains("Service shop/web is also defined at services.yaml: document[")
            && l.ends_with("the later one is used")),
        "{stderr}"
    );
}

#[test]
fn nothing_from_a_file_reaches_the_terminal_raw() {
    let pool = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: \"\\e[2Jevil\"}\nspec: {addresses: [192.0.2.0/28]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"\\e[31mred\"}\n";
    let path = temp_file("escapes", pool);
    let file = path.to_str().expect("utf-8");
    let out = lb(&["check-config", file]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains(&format!("{file}: IPAddressPool/\\u{{1b}}[2Jevil: metadata.name: ")), "{text}");

    // An annotation's value echoed in the plan's ERROR column.
    let services = temp_file(
        "escapes-services",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: {metallb.universe.tf/address-pool: \"\\e[2Jnope\"}}\nspec: {type: LoadBalancer}\n",
    );
    let out = lb(&["plan", "--config", "config/metallb.yaml", "--services", services.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.lines().any(|l| l.starts_with("default/web") && l.contains("[2Jnope")), "{text}");
    for p in [path, services] {
        std::fs::remove_dir_all(p.parent().expect("dir")).ok();
    }
}

#[test]
fn convert_turns_address_pools_into_the_current_kinds() {
    let out = lb(&["convert", "tests/fixtures/addresspool.yaml"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = stdout(&out);
    for kind in ["kind: IPAddressPool", "kind: L2Advertisement", "kind: BGPAdvertisement"] {
        assert_eq!(yaml.matches(kind).count(), if kind == "kind: IPAddressPool" { 2 } else { 1 }, "{kind} in:\n{yaml}");
    }
    assert!(!yaml.contains("kind: AddressPool") && !yaml.contains("protocol"), "{yaml}");
    let converted = temp_file("addresspool", &yaml);
    let converted = converted.to_str().expect("utf-8");
    let check = lb(&["check-config", converted]);
    assert!(check.status.success(), "{}", stdout(&check));
    let services = temp_file(
        "addresspool-services",
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, annotations: {metallb.universe.tf/address-pool: legacy-bgp}}\nspec: {type: LoadBalancer}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {type: LoadBalancer}\n",
    );
    let services = services.to_str().expect("utf-8");
    let original = plan_json("tests/fixtures/addresspool.yaml", services);
    assert_eq!(original, plan_json(converted, services));
    assert_eq!(original["services"][0]["ips"], serde_json::json!(["198.51.100.0"]));
    assert_eq!(original["services"][1]["ips"], serde_json::json!(["192.0.2.1"]), "avoidBuggyIPs carried over");
    for test in ["addresspool", "addresspool-services"] {
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("lb-cli-{}-{test}", std::process::id()))).ok();
    }
}

#[test]
fn convert_gives_legacy_names_that_kubernetes_accepts() {
    let fixture = "tests/fixtures/legacy-names.yaml";
    assert!(lb(&["check-config", fixture]).status.success(), "the legacy format has no rule for names");
    let out = lb(&["convert", fixture]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = stdout(&out);
    let long = "a-very-long-pool-name-that-goes-on-and-on-beyond-sixty-three-ch";
    assert_eq!(long.len(), 63);
    for expected in [
        "name: my-pool",
        &format!("name: {long}"),
        "- my-pool",
        &format!("- {long}"),
        "name: fast-bfd",
        "bfdProfile: fast-bfd",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    assert!(!yaml.contains("My_Pool") && !yaml.contains("Fast_BFD"), "{yaml}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("note: IPAddressPool \"My_Pool\" is written as \"my-pool\""), "{stderr}");
    let converted = temp_file("legacy-names", &yaml);
    let check = lb(&["check-config", converted.to_str().expect("utf-8")]);
    assert!(check.status.success(), "the output applies: {}", stdout(&check));
    std::fs::remove_dir_all(converted.parent().expect("dir")).ok();
}

#[test]
fn the_whole_of_ipv6_counts_two_to_the_128_in_text_and_is_capped_in_json() {
    const ALL_OF_IPV6: &str = "340282366920938463463374607431768211456";
    let out = lb(&["check-config", "tests/fixtures/whole-families.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains(&format!("4294967296 IPv4 and {ALL_OF_IPV6} IPv6 addresses")), "{}", stdout(&out));

    let out = lb(&["plan", "--config", "tests/fixtures/whole-families.yaml", "--services", "services.yaml"]);
    assert!(out.status.success());
    let pools = stdout(&out);
    let row = pools.lines().find(|l| l.starts_with("all ")).unwrap_or_default();
    assert!(row.contains("4294967296") && row.ends_with(ALL_OF_IPV6), "{pools}");

    let plan = plan_json("tests/fixtures/whole-families.yaml", "services.yaml");
    let all = plan["pools"].as_array().and_then(|p| p.first()).cloned().unwrap_or_default();
    assert_eq!(all["ipv6Total"], 9007199254740991u64, "capped where JSON readers stay exact: {all}");
    assert_eq!(all["ipv4Total"], 4294967296u64);
}

#[test]
fn plan_with_nodes_places_each_layer_2_address_on_exactly_one_node() {
    let plan = plan_json_with("config/metallb.yaml", "services.yaml", &["--nodes", "nodes.yaml"]);
    let nodes = plan["nodes"].as_array().expect("nodes");
    let mut owned: Vec<(String, String)> = Vec::new();
    for node in nodes {
        for a in node["l2"].as_array().into_iter().flatten() {
            owned.push((a["ip"].as_str().unwrap_or_default().to_string(), node["node"].to_string()));
            assert!(a["service"].as_str().is_some_and(|s| s.contains('/')), "{a}");
            assert!(a["interfaces"].is_array(), "{a}");
        }
    }
    // Every address of the layer 2 pools (default, overflow) on one node.
    let l2_ips: Vec<String> = plan["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| matches!(s["pool"].as_str(), Some("default" | "overflow")))
        .flat_map(|s| s["ips"].as_array().cloned().unwrap_or_default())
        .map(|ip| ip.as_str().unwrap_or_default().to_string())
        .collect();
    assert!(!l2_ips.is_empty());
    let mut ips: Vec<&String> = owned.iter().map(|(ip, _)| ip).collect();
    ips.sort();
    // A shared address (allow-shared-ip) is one address: one node answers.
    let mut expected: Vec<&String> = l2_ips.iter().collect();
    expected.sort();
    expected.dedup();
    assert_eq!(ips, expected, "each layer 2 address once: {owned:?}");
    // node-c is excluded from load balancers: it owns nothing.
    assert!(nodes[2]["l2"].as_array().is_none_or(|l| l.is_empty()), "{}", nodes[2]);
}

/// The arguments `deploy/` runs each component with are ones `lb` takes:
/// an unknown flag fails before `--help` is reached.
#[test]
fn the_manifests_run_lb_with_arguments_it_accepts() {
    for (file, component) in [("deploy/controller.yaml", "controller"), ("deploy/speaker.yaml", "speaker")] {
        let text = std::fs::read_to_string(root().join("..").join(file)).expect("manifest");
        let docs = lb_core::manifest::documents(&text).expect("YAML");
        let args: Vec<String> = docs[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        assert_eq!(args[0], component);
        let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
        with_help.push("--help");
        let out = lb(&with_help);
        assert!(out.status.success(), "{file}: lb {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let bad = lb(&["speaker", "--no-such-flag", "--help"]);
    assert!(!bad.status.success(), "an unknown flag is refused");
}
