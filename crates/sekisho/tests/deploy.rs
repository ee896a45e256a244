//! The gateway configs of the Kubernetes deployment (`deploy/`) are configs sekisho runs.
//!
//! kustomize puts `deploy/base/gateway/gateway.yaml`, or an overlay's replacement
//! `deploy/overlays/*/gateway.yaml`, into the `gateway-config` ConfigMap. Each is checked
//! here as `sekisho validate` checks it in a pod. The files the config names under
//! `/etc/sekisho/` exist only in a pod, so the test puts the same content in their place:
//!
//! | pod path               | what the pod mounts there         | what the test uses               |
//! |------------------------|-----------------------------------|----------------------------------|
//! | `/etc/sekisho/config/` | ConfigMap `gateway-config`        | `deploy/base/gateway/` (the same files) |
//! | `/etc/sekisho/jwks/`   | ConfigMap or Secret `gateway-jwks`| `deploy/base/jwks/` (the example JWKS)  |
//! | `/etc/sekisho/tls/`    | Secret `gateway-tls`              | a self-signed pair from `sekisho cert`  |
//!
//! Paths relative to the working directory (`proto/...`) resolve against the repository
//! root here as against `/usr/share/sekisho` in the image, which holds the same `proto/`.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::TempDir;

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The base's gateway config and every overlay's, as paths relative to the repository.
fn gateway_configs() -> Vec<String> {
    let mut configs = vec!["deploy/base/gateway/gateway.yaml".to_owned()];
    let overlays = repo().join("deploy/overlays");
    let mut names: Vec<String> = std::fs::read_dir(&overlays)
        .expect("deploy/overlays")
        .map(|entry| {
            entry
                .expect("overlay")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| overlays.join(name).join("gateway.yaml").is_file())
        .collect();
    names.sort();
    configs.extend(
        names
            .into_iter()
            .map(|name| format!("deploy/overlays/{name}/gateway.yaml")),
    );
    configs
}

/// A YAML document as JSON values, for reading manifests and configs alike.
fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

/// The config as sekisho reads it, as JSON.
fn parsed(relative: &str) -> Value {
    let config =
        sekisho::config::parse(&read(relative)).unwrap_or_else(|p| panic!("{relative}: {p:?}"));
    serde_json::to_value(&config).expect("config as JSON")
}

/// Stands in for the pod's mounts (see the table above); returns the pod paths replaced.
fn with_pod_files(config: &str, tls_dir: &Path) -> (String, Vec<&'static str>) {
    let mounts = [
        ("/etc/sekisho/config/", repo().join("deploy/base/gateway")),
        ("/etc/sekisho/jwks/", repo().join("deploy/base/jwks")),
        ("/etc/sekisho/tls/", tls_dir.to_path_buf()),
    ];
    let mut text = config.to_owned();
    let mut replaced = Vec::new();
    for (pod, here) in mounts {
        if text.contains(pod) {
            text = text.replace(pod, &format!("{}/", here.display()));
            replaced.push(pod);
        }
    }
    assert!(
        !text.contains("/etc/sekisho/"),
        "a pod path the test has no stand-in for:\n{text}"
    );
    (text, replaced)
}

#[test]
fn every_gateway_config_validates_with_the_files_its_pod_mounts() {
    let dir = TempDir::new("deploy");
    let made = Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["cert", "--host", "api.example.com", "--out"])
        .arg(dir.path())
        .output()
        .expect("run sekisho cert");
    assert!(made.status.success(), "{made:?}");
    std::fs::rename(
        dir.path().join("api.example.com.crt"),
        dir.path().join("tls.crt"),
    )
    .unwrap();
    std::fs::rename(
        dir.path().join("api.example.com.key"),
        dir.path().join("tls.key"),
    )
    .unwrap();

    let configs = gateway_configs();
    assert!(
        configs.len() >= 3,
        "the base and the nlb and alb overlays: {configs:?}"
    );
    let mut tls_seen = false;
    for relative in &configs {
        let (text, replaced) = with_pod_files(&read(relative), dir.path());
        assert!(
            replaced.contains(&"/etc/sekisho/config/"),
            "{relative} uses partners.txt"
        );
        assert!(
            replaced.contains(&"/etc/sekisho/jwks/"),
            "{relative} uses the JWKS"
        );
        tls_seen |= replaced.contains(&"/etc/sekisho/tls/");
        let file = dir.write("gateway.yaml", &text);
        let checked = Command::new(env!("CARGO_BIN_EXE_sekisho"))
            .args(["validate", "--config"])
            .arg(&file)
            .current_dir(repo())
            .output()
            .expect("run sekisho validate");
        assert_eq!(
            checked.status.code(),
            Some(0),
            "{relative} does not validate:\n{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        assert!(String::from_utf8_lossy(&checked.stdout).contains(": ok"));
    }
    assert!(
        tls_seen,
        "the nlb overlay terminates TLS with the Secret's pair"
    );
}

#[test]
fn overlays_differ_from_the_base_only_in_listeners() {
    let without_listeners = |relative: &str| {
        let mut config = parsed(relative);
        config.as_object_mut().expect("a map").remove("listeners");
        config
    };
    let configs = gateway_configs();
    let base = without_listeners(&configs[0]);
    for overlay in &configs[1..] {
        assert!(
            without_listeners(overlay) == base,
            "{overlay} must equal {} except for `listeners`",
            configs[0]
        );
    }
}

#[test]
fn the_manifests_serve_what_the_configs_expect() {
    let base = parsed("deploy/base/gateway/gateway.yaml");

    // The ashi cluster resolves the headless Service in the namespace everything is put in.
    let namespace = yaml(&read("deploy/base/kustomization.yaml"))["namespace"].clone();
    let service = yaml(&read("deploy/base/ashi-service.yaml"));
    assert_eq!(service["spec"]["clusterIP"], "None", "per-pod DNS answers");
    let port = &service["spec"]["ports"][0]["port"];
    let expected = format!(
        "{}.{}.svc.cluster.local:{}",
        service["metadata"]["name"].as_str().unwrap(),
        namespace.as_str().unwrap(),
        port
    );
    let clusters = base["clusters"].as_array().unwrap();
    let ashi = clusters.iter().find(|c| c["name"] == "ashi").unwrap();
    assert_eq!(ashi["endpoints"][0]["dns"], expected.as_str());

    // Probes and Prometheus reach the admin listener on the port the pod declares.
    let deployment = yaml(&read("deploy/base/gateway-deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let port_named = |name: &str| {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].as_u64().unwrap())
    };
    let address = |value: &Value| -> SocketAddr { value.as_str().unwrap().parse().unwrap() };
    let admin = address(&base["admin"]["address"]);
    assert_eq!(Some(u64::from(admin.port())), port_named("admin"));
    // In-cluster callers reach the base's listener through the pod's `http` port.
    let listener = address(&base["listeners"][0]["address"]);
    assert_eq!(Some(u64::from(listener.port())), port_named("http"));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/live");

    // Shutdown: the preStop sleep and then the drain fit in the grace period, so the kubelet
    // never kills a pod that is still finishing requests.
    let drain = humantime::parse_duration(base["drain_timeout"].as_str().unwrap()).unwrap();
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        pre_stop + drain.as_secs() < grace,
        "preStop {pre_stop}s + drain {drain:?} must fit in {grace}s"
    );
}

#[test]
fn every_listener_port_is_a_port_of_the_pod() {
    let declared = |overlay: Option<&str>| {
        let mut manifests = vec![read("deploy/base/gateway-deployment.yaml")];
        if let Some(overlay) = overlay {
            for entry in std::fs::read_dir(repo().join(overlay)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    manifests.push(std::fs::read_to_string(path).unwrap());
                }
            }
        }
        manifests
    };
    for relative in gateway_configs() {
        let overlay = relative
            .strip_suffix("/gateway.yaml")
            .filter(|d| d.contains("overlays"));
        let manifests = declared(overlay);
        let config = parsed(&relative);
        for listener in config["listeners"].as_array().unwrap() {
            let address: SocketAddr = listener["address"].as_str().unwrap().parse().unwrap();
            let port = format!("containerPort: {}", address.port());
            assert!(
                manifests.iter().any(|m| m.contains(&port)),
                "{relative}: listener {} listens on {}, which no manifest declares as a container port",
                listener["name"],
                address.port()
            );
        }
    }
}
