//! The gateway configs of the Kubernetes deployment (`deploy/`) are configs sekisho runs.
//!
//! kustomize puts `deploy/base/gateway/gateway.yaml`, or an overlay's replacement
//! `deploy/overlays/*/gateway.yaml` (or the team example's root config,
//! `deploy/examples/teams/platform/gateway.yaml`), into the `gateway-config` ConfigMap.
//! Each is checked here as `sekisho validate` checks it in a pod. The files the config names
//! under `/etc/sekisho/` exist only in a pod, so the test puts the same content in their place:
//!
//! | pod path               | what the pod mounts there         | what the test uses               |
//! |------------------------|-----------------------------------|----------------------------------|
//! | `/etc/sekisho/config/` | ConfigMap `gateway-config`        | `deploy/base/gateway/` (the same files) |
//! | `/etc/sekisho/jwks/`   | ConfigMap or Secret `gateway-jwks`| `deploy/base/jwks/` (the example JWKS)  |
//! | `/etc/sekisho/tls/`    | Secret `gateway-tls`              | a self-signed pair from `sekisho cert`  |
//! | `/etc/sekisho/teams/`  | ConfigMaps `gateway-team-*` (projected, `<team>/` each) | `deploy/examples/teams/teams/*/` files |
//!
//! Paths relative to the working directory (`proto/...`) resolve against the repository
//! root here as against `/usr/share/sekisho` in the image, which holds the same `proto/`.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use regex::Regex;
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

// Team-owned routes (`deploy/examples/teams`): the platform's root config grants parts of the
// URL space to teams, and the gateway pods mount every team's ConfigMap in one projected
// volume, /etc/sekisho/teams, each team's files in its own directory of it
// (/etc/sekisho/teams/<team>/). The tests lay that volume out as the kubelet would, from the
// files the teams' kustomizations make their ConfigMaps of.

/// The example of the delegated layout.
const TEAMS: &str = "deploy/examples/teams";

/// A team's ConfigMap as its kustomization generates it.
struct TeamConfigMap {
    name: String,
    namespace: Value,
    /// Each key, with the file its value comes from.
    keys: Vec<(String, PathBuf)>,
}

/// The ConfigMaps of the kustomizations under `deploy/examples/teams/teams/`.
fn team_config_maps() -> Vec<TeamConfigMap> {
    let teams = repo().join(TEAMS).join("teams");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&teams)
        .expect("deploy/examples/teams/teams")
        .map(|entry| entry.expect("team").path())
        .filter(|dir| dir.join("kustomization.yaml").is_file())
        .collect();
    dirs.sort();
    let mut maps = Vec::new();
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("kustomization.yaml")).expect("read");
        let kustomization = yaml(&text);
        let generators = kustomization["configMapGenerator"].as_array();
        for generator in generators.into_iter().flatten() {
            let name = generator["name"].as_str().expect("a name").to_owned();
            assert_eq!(
                generator["options"]["disableNameSuffixHash"], true,
                "{name}: the pods mount it by name, so the name has no content hash"
            );
            let keys = strings(&generator["files"])
                .into_iter()
                .map(|entry| {
                    let (key, file) = entry.split_once('=').unwrap_or_else(|| {
                        let key = Path::new(entry).file_name().and_then(|n| n.to_str());
                        (key.expect("a file name"), entry)
                    });
                    (key.to_owned(), dir.join(file))
                })
                .collect();
            maps.push(TeamConfigMap {
                name,
                namespace: kustomization["namespace"].clone(),
                keys,
            });
        }
    }
    maps
}

/// The sources of the projected volume at /etc/sekisho/teams: each ConfigMap's name and its
/// items (key, path in the volume).
fn team_projection() -> Vec<(String, Vec<(String, String)>)> {
    let patch = yaml(&read(&format!("{TEAMS}/platform/gateway-teams-patch.yaml")));
    let pod = &patch["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == "/etc/sekisho/teams")
        .expect("the patch mounts /etc/sekisho/teams");
    assert!(
        mount["subPath"].is_null(),
        "a directory mount, so updates reach the pod"
    );
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the volume mounted at /etc/sekisho/teams");
    let sources = volume["projected"]["sources"].as_array();
    sources
        .expect("/etc/sekisho/teams is a projected volume")
        .iter()
        .map(|source| {
            let map = &source["configMap"];
            let name = map["name"].as_str().expect("a ConfigMap source").to_owned();
            assert_eq!(
                map["optional"], true,
                "{name}: a team without its ConfigMap must not keep the gateway pods from starting"
            );
            let items = map["items"].as_array().unwrap_or_else(|| {
                panic!("{name}: `items` pins the keys, so no team can name a file of another")
            });
            let items = items
                .iter()
                .map(|item| {
                    let text = |field: &str| item[field].as_str().expect("key and path").to_owned();
                    (text("key"), text("path"))
                })
                .collect();
            (name, items)
        })
        .collect()
}

/// How many routes the team's files hold.
fn routes_in(map: &TeamConfigMap) -> usize {
    map.keys
        .iter()
        .map(|(_, file)| {
            let text = std::fs::read_to_string(file).expect("read a team file");
            yaml(&text)["routes"].as_array().map_or(0, Vec::len)
        })
        .sum()
}

#[test]
fn the_team_example_validates_with_every_teams_files_as_its_pods_mount_them() {
    let dir = TempDir::new("teams");
    let mounted = dir.path().join("teams");
    std::fs::create_dir(&mounted).expect("create the teams directory");

    // /etc/sekisho/teams: each projected item, from the file its ConfigMap's key comes from.
    let maps = team_config_maps();
    let namespace = yaml(&read("deploy/base/kustomization.yaml"))["namespace"].clone();
    let projection = team_projection();
    for (name, items) in &projection {
        let map = maps.iter().find(|m| m.name == *name).unwrap_or_else(|| {
            panic!("the pods mount ConfigMap {name}, which no kustomization in {TEAMS}/teams makes")
        });
        let team = name
            .strip_prefix("gateway-team-")
            .unwrap_or_else(|| panic!("{name}: a team's ConfigMap is gateway-team-<team>"));
        assert_eq!(
            map.namespace, namespace,
            "{name}: a pod's volumes read ConfigMaps of the pod's namespace only"
        );
        for (key, path) in items {
            let (_, file) = map.keys.iter().find(|(k, _)| k == key).unwrap_or_else(|| {
                panic!("the pods mount key {key} of {name}, which its kustomization lacks")
            });
            // The team's directory and a plain file name in it: relative names in a team
            // file stay in its directory, so no team can name another team's files.
            let in_own_dir = Path::new(path).strip_prefix(team).is_ok_and(|rest| {
                let parts: Vec<_> = rest.components().collect();
                matches!(parts[..], [std::path::Component::Normal(_)])
            });
            assert!(
                in_own_dir,
                "{name}: item {key} goes to {path}, not to a file in the team's directory {team}/"
            );
            let target = mounted.join(path);
            std::fs::create_dir_all(target.parent().expect("a directory"))
                .expect("create the team's directory");
            std::fs::copy(file, &target).expect("copy a team file");
        }
        for (key, _) in &map.keys {
            assert!(
                items.iter().any(|(k, _)| k == key),
                "{name} has a key {key} the pods do not mount: add it to the projection"
            );
        }
    }
    for map in &maps {
        assert!(
            projection.iter().any(|(name, _)| *name == map.name),
            "the pods do not mount {}: add it to the projection",
            map.name
        );
    }

    // Each grant reads its team's directory, and nothing but it.
    let relative = format!("{TEAMS}/platform/gateway.yaml");
    let grants = raw(&relative)["teams"].clone();
    for grant in grants.as_array().expect("teams") {
        let team = grant["name"].as_str().expect("a team name");
        let dir = format!("/etc/sekisho/teams/{team}/");
        for file in strings(&grant["files"]) {
            assert!(
                file.strip_prefix(&dir)
                    .is_some_and(|name| !name.contains('/')),
                "team {team}'s files {file} must be in its own directory {dir}"
            );
        }
        assert!(
            !strings(&grant["upstreams"]).is_empty(),
            "team {team}'s grant names the upstreams its clusters may send to"
        );
    }

    // The root config as the pod reads it, in strict mode: every team's files must serve.
    let text = read(&relative).replace("/etc/sekisho/teams/", &format!("{}/", mounted.display()));
    let (text, _) = with_pod_files(&text, dir.path());
    // Relative paths (proto/...) resolve against the pod's working directory, which holds
    // the repository's proto/ tree as the repository root does here.
    let proto = format!("{}/proto", repo().display());
    let text = text
        .replace("[proto/", &format!("[{proto}/"))
        .replace(", proto/", &format!(", {proto}/"))
        .replace("[proto]", &format!("[{proto}]"));
    let root = dir.write("gateway.yaml", &text);
    let config = sekisho::config::load(&root).unwrap_or_else(|e| panic!("{relative}:\n{e}"));
    let resolver: Arc<dyn sekisho::upstream::discovery::Resolve> =
        Arc::new(sekisho::upstream::discovery::SystemResolver);
    let options = sekisho::snapshot::CompileOptions {
        strict: true,
        team_files: None,
    };
    let compile = |config| {
        sekisho::snapshot::Snapshot::compile_with(config, &root, None, None, &resolver, &options)
    };
    let snapshot = compile(config)
        .unwrap_or_else(|e| panic!("{relative} with the teams' files does not validate:\n{e}"));

    let names: Vec<&str> = snapshot.teams.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["shop", "payments"], "the example's two teams");
    for team in &snapshot.teams {
        assert_eq!(
            team.state(),
            "current",
            "team {}: {:?}",
            team.name,
            team.refused.as_ref().map(|r| &r.error)
        );
        assert!(team.routes > 0, "team {} serves no route", team.name);
        let map = maps
            .iter()
            .find(|m| m.name == format!("gateway-team-{}", team.name))
            .unwrap_or_else(|| panic!("team {}'s ConfigMap gateway-team-{0}", team.name));
        assert_eq!(
            team.routes,
            routes_in(map),
            "team {} serves every route of its files, and no other team's",
            team.name
        );
    }

    // What a team's CI runs before a change merges: its files against the root.
    for map in &maps {
        let team = map
            .name
            .strip_prefix("gateway-team-")
            .expect("gateway-team-<team>");
        let checked = Command::new(env!("CARGO_BIN_EXE_sekisho"))
            .args(["validate", "--config"])
            .arg(&root)
            .args(["--team", team, "--files"])
            .args(map.keys.iter().map(|(_, file)| file))
            .current_dir(repo())
            .output()
            .expect("run sekisho validate --team");
        assert_eq!(
            checked.status.code(),
            Some(0),
            "team {team}'s files do not validate against {relative}:\n{}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }

    // A team cluster pointed at the platform's ashi is outside its grant's `upstreams`: the
    // team's files are refused, which fails the strict compile.
    let ashi = raw(&relative)["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "ashi")
        .and_then(|c| c["endpoints"][0]["dns"].as_str())
        .expect("the root's ashi cluster")
        .to_owned();
    assert_eq!(ashi, "ashi.sekisho.svc.cluster.local:50051");
    let (file, endpoint) = projection
        .iter()
        .flat_map(|(_, items)| items)
        .map(|(_, path)| mounted.join(path))
        .find_map(|file| {
            let text = std::fs::read_to_string(&file).expect("read a copied team file");
            let clusters = yaml(&text)["clusters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let dns = clusters
                .iter()
                .flat_map(|c| c["endpoints"].as_array().cloned().unwrap_or_default())
                .find_map(|e| e["dns"].as_str().map(str::to_owned));
            dns.map(|dns| (file, dns))
        })
        .expect("a team cluster with a DNS endpoint");
    let text = std::fs::read_to_string(&file).expect("read a copied team file");
    std::fs::write(&file, text.replace(&endpoint, &ashi)).expect("rewrite a team file");
    let config = sekisho::config::load(&root).unwrap_or_else(|e| panic!("{relative}:\n{e}"));
    let error = match compile(config) {
        Ok(_) => panic!(
            "{}: a team cluster sending to {ashi} instead of {endpoint} validates",
            file.display()
        ),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("upstreams"),
        "{}: a cluster sending to {ashi} must be refused for the grant's `upstreams`:\n{error}",
        file.display()
    );
}

#[test]
fn the_team_example_root_is_the_base_config_with_grants() {
    let relative = format!("{TEAMS}/platform/gateway.yaml");
    let without_teams = |relative: &str| {
        let mut config = parsed(relative);
        let teams = config.as_object_mut().expect("a map").remove("teams");
        (
            config,
            teams.and_then(|t| t.as_array().map(Vec::len)).unwrap_or(0),
        )
    };
    let (root, grants) = without_teams(&relative);
    let (base, _) = without_teams("deploy/base/gateway/gateway.yaml");
    assert!(grants > 0, "{relative} grants routes to teams");
    assert!(
        root == base,
        "{relative} must equal deploy/base/gateway/gateway.yaml except for `teams`"
    );
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

// Identity and authorization: ashi believes `x-user-id` (a user) and `x-ashi-service` (a
// service principal) and refuses calls with neither, so only the gateway may give them a
// value, and catalog writes must need the role `catalog-admin` wherever they are offered.
// These read the configs as written (not through sekisho's config model), so they hold the
// deployment to its promises whatever the model accepts.

/// The headers ashi takes a caller's identity from.
const IDENTITY_HEADERS: [&str; 2] = ["x-user-id", "x-ashi-service"];

/// What the partner REST route may serve: sizing, and reading the catalog.
const PARTNER_READS: [&str; 5] = [
    "ashi.v1.SizingService/DiagnoseFoot",
    "ashi.v1.SizingService/RecommendSize",
    "ashi.v1.SizingService/RecommendSizes",
    "ashi.v1.CatalogService/GetShoe",
    "ashi.v1.CatalogService/ListShoes",
];

/// A gateway config as written, YAML anchors resolved.
fn raw(relative: &str) -> Value {
    yaml(&read(relative))
}

fn routes(config: &Value) -> &Vec<Value> {
    config["routes"].as_array().expect("routes")
}

/// A list of strings; absent is empty.
fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().expect("a string"))
            .collect(),
        other => panic!("a list of strings: {other}"),
    }
}

/// An RPC of ashi's API with its `google.api.http` rule.
#[derive(Debug)]
struct Rpc {
    /// `ashi.v1.CatalogService`
    service: String,
    /// `UpsertShoe`
    method: String,
    /// `get`, `put`, `post`, `delete` or `patch`.
    verb: String,
    /// `/v1/shoes/{shoe.shoe_id}`
    template: String,
}

impl Rpc {
    fn full_name(&self) -> String {
        format!("{}/{}", self.service, self.method)
    }
}

/// The RPCs of one `.proto` file of ashi's API (the repository's `proto/`, which the image
/// carries too), read line by line: `service X {`, `rpc M(`, then the rule's verb line.
fn rpcs(relative: &str) -> Vec<Rpc> {
    let text = read(relative);
    let package = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .expect("a package")
        .trim_end_matches(';')
        .trim()
        .to_owned();
    let mut service = None;
    let mut found: Vec<Rpc> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("service ") {
            let name = rest.split_whitespace().next().expect("a service name");
            service = Some(format!("{package}.{name}"));
        } else if let Some(rest) = line.strip_prefix("rpc ") {
            let method = rest.split('(').next().expect("an rpc name").trim();
            found.push(Rpc {
                service: service.clone().expect("an rpc inside a service"),
                method: method.to_owned(),
                verb: String::new(),
                template: String::new(),
            });
        } else if let Some((verb, template)) = line.split_once(':')
            && ["get", "put", "post", "delete", "patch"].contains(&verb.trim())
            && let Some(rpc) = found.last_mut()
            && rpc.verb.is_empty()
        {
            rpc.verb = verb.trim().to_owned();
            rpc.template = template.trim().trim_matches('"').to_owned();
        }
    }
    for rpc in &found {
        assert!(!rpc.verb.is_empty(), "{relative}: {rpc:?} has no http rule");
    }
    found
}

/// A call of an RPC as it reaches the gateway.
struct Call {
    http_method: String,
    path: String,
    /// Service and method of a gRPC or gRPC-Web call; `None` for REST.
    grpc: Option<(String, String)>,
}

impl Call {
    fn grpc(rpc: &Rpc) -> Call {
        Call {
            http_method: "POST".into(),
            path: format!("/{}/{}", rpc.service, rpc.method),
            grpc: Some((rpc.service.clone(), rpc.method.clone())),
        }
    }

    /// The REST call of the rule, with a value in every path variable.
    fn rest(rpc: &Rpc) -> Call {
        let variables = Regex::new(r"\{[^}]*\}").unwrap();
        Call {
            http_method: rpc.verb.to_ascii_uppercase(),
            path: variables.replace_all(&rpc.template, "x").into_owned(),
            grpc: None,
        }
    }
}

/// Whether a route's `match` takes the call, as sekisho's matcher decides: `None` never,
/// `Some(true)` always, `Some(false)` depending on what the call here does not fix (host,
/// headers), so later routes may still get it.
fn takes(conditions: &Value, call: &Call) -> Option<bool> {
    let mut always = true;
    let Some(conditions) = conditions.as_object() else {
        return Some(true); // no conditions: everything
    };
    for (key, want) in conditions {
        let text = || want.as_str().expect("a string");
        let holds = match key.as_str() {
            "host" => {
                always = false;
                true
            }
            "headers" => {
                always &= is_empty_list(want);
                true
            }
            "path" => call.path == text(),
            "path_prefix" => call.path.starts_with(text()),
            "path_regex" => Regex::new(&format!("^(?:{})$", text()))
                .expect("path_regex")
                .is_match(&call.path),
            "method" => call.http_method == text(),
            "grpc_service" => call.grpc.as_ref().is_some_and(|(s, _)| s == text()),
            "grpc_method" => call.grpc.as_ref().is_some_and(|(_, m)| m == text()),
            other => panic!("match.{other}: a condition this test does not know; teach `takes`"),
        };
        if !holds {
            return None;
        }
    }
    Some(always)
}

fn is_empty_list(value: &Value) -> bool {
    value.as_array().is_none_or(Vec::is_empty)
}

/// Whether a transcoding route offers the RPC over REST (`services`, then `methods`; an
/// empty list is everything).
fn transcodes(transcode: &Value, rpc: &Rpc) -> bool {
    let services = strings(&transcode["services"]);
    let methods = strings(&transcode["methods"]);
    (services.is_empty() || services.contains(&rpc.service.as_str()))
        && (methods.is_empty() || methods.contains(&rpc.full_name().as_str()))
}

/// The route lets through only tokens with role `catalog-admin` and names the user upstream.
fn needs_catalog_admin(route: &Value) -> bool {
    let jwt = &route["jwt"];
    let roles = strings(&jwt["require"]["role"]);
    !roles.is_empty()
        && roles.iter().all(|r| *r == "catalog-admin")
        && jwt["forward_claims"]["sub"] == "x-user-id"
}

/// The catalog's writes: every CatalogService RPC whose rule is not a GET.
fn catalog_writes() -> Vec<Rpc> {
    let writes: Vec<Rpc> = rpcs("proto/ashi/v1/catalog.proto")
        .into_iter()
        .filter(|r| r.service == "ashi.v1.CatalogService" && r.verb != "get")
        .collect();
    let names: Vec<&str> = writes.iter().map(|r| r.method.as_str()).collect();
    for expected in ["UpsertShoe", "ImportShoesCsv"] {
        assert!(
            names.contains(&expected),
            "{expected} is a write: {names:?}"
        );
    }
    writes
}

#[test]
fn every_gateway_config_removes_identity_headers_from_clients() {
    for relative in gateway_configs() {
        let config = raw(&relative);
        let internal: Vec<String> = strings(&config["internal_headers"])
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        for header in IDENTITY_HEADERS {
            assert!(
                internal.iter().any(|h| h == header),
                "{relative}: `internal_headers` must name {header}, or a client could send it \
                 and ashi would believe it: {internal:?}"
            );
        }
    }
}

#[test]
fn every_route_names_its_caller_to_ashi() {
    for relative in gateway_configs() {
        let config = raw(&relative);
        for route in routes(&config) {
            let name = &route["name"];
            let added = &route["request_headers"]["add"];
            assert!(
                added["x-user-id"].is_null() && added["X-User-Id"].is_null(),
                "{relative}: route {name} must not set a fixed x-user-id; it comes from a token"
            );
            let user = route["jwt"]["forward_claims"]["sub"] == "x-user-id";
            let service = added["x-ashi-service"]
                .as_str()
                .is_some_and(|s| !s.is_empty());
            assert!(
                user || service,
                "{relative}: route {name} gives ashi neither x-user-id (jwt.forward_claims) nor \
                 x-ashi-service (request_headers.add); ashi refuses such calls"
            );
        }
    }
}

#[test]
fn every_route_to_a_catalog_write_needs_the_catalog_admin_role() {
    let writes = catalog_writes();
    for relative in gateway_configs() {
        let config = raw(&relative);
        for rpc in &writes {
            let mut grpc_routes = Vec::new();
            for (call, grpc) in [(Call::grpc(rpc), true), (Call::rest(rpc), false)] {
                // Routes match in file order and the first one that takes a call serves it
                // (or refuses it): every route up to one that surely takes it is checked.
                for route in routes(&config) {
                    let Some(always) = takes(&route["match"], &call) else {
                        continue;
                    };
                    // A REST call reaches ashi only through a transcoding route that offers
                    // the RPC; a gRPC call through any route that takes it.
                    let reaches = grpc
                        || (!route["transcode"].is_null() && transcodes(&route["transcode"], rpc));
                    if reaches {
                        assert!(
                            needs_catalog_admin(route),
                            "{relative}: route {} lets {} {} through to {} without requiring \
                             role catalog-admin (jwt.require.role: [catalog-admin] with \
                             forward_claims sub: x-user-id)",
                            route["name"],
                            call.http_method,
                            call.path,
                            rpc.full_name()
                        );
                        if grpc {
                            grpc_routes.push(route["name"].clone());
                        }
                    }
                    if always {
                        break;
                    }
                }
            }
            assert!(
                !grpc_routes.is_empty(),
                "{relative}: no route serves {} over gRPC; the catalog team writes there",
                rpc.full_name()
            );
        }
    }
}

#[test]
fn the_partner_route_serves_only_reads() {
    let known: Vec<String> = ["sizing", "catalog", "measurement"]
        .iter()
        .flat_map(|file| rpcs(&format!("proto/ashi/v1/{file}.proto")))
        .map(|r| r.full_name())
        .collect();
    for read in PARTNER_READS {
        assert!(
            known.iter().any(|k| k == read),
            "{read} is not an RPC of proto/ashi/v1"
        );
    }
    let mut reads = PARTNER_READS.to_vec();
    reads.sort_unstable();
    for relative in gateway_configs() {
        let config = raw(&relative);
        let partner = routes(&config)
            .iter()
            .find(|r| r["name"] == "partner-rest")
            .unwrap_or_else(|| panic!("{relative}: the partner-rest route"));
        let mut methods = strings(&partner["transcode"]["methods"]);
        methods.sort_unstable();
        assert_eq!(
            methods, reads,
            "{relative}: partner-rest's transcode.methods must list exactly the reads (an empty \
             list serves every method of `services`, the catalog's writes among them)"
        );
        assert_eq!(
            partner["request_headers"]["add"]["x-ashi-service"], "partner",
            "{relative}: partner-rest names its callers to ashi as the service `partner`"
        );
        assert!(
            !partner["ip_acl"].is_null(),
            "{relative}: partner-rest is open only to the partners' networks"
        );
    }
}

/// Every document of every YAML file under `deploy/`, with the file it came from.
fn manifests() -> Vec<(String, Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read deploy/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("deploy"), &mut files);
    files.sort();
    let mut documents = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read manifest");
        let name = path.display().to_string();
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        documents.extend(docs.into_iter().map(|d| (name.clone(), d)));
    }
    documents
}

/// Whether a label selector selects pods with these labels.
fn selects(selector: &Value, labels: &Value) -> bool {
    assert!(
        selector["matchExpressions"].is_null(),
        "matchExpressions: teach `selects` about them"
    );
    selector["matchLabels"]
        .as_object()
        .is_none_or(|want| want.iter().all(|(k, v)| &labels[k] == v))
}

/// The NetworkPolicies that select pods with these labels (they all apply, and add up).
fn policies_for(labels: &Value) -> Vec<(String, Value)> {
    manifests()
        .into_iter()
        .filter(|(_, d)| d["kind"] == "NetworkPolicy" && selects(&d["spec"]["podSelector"], labels))
        .collect()
}

/// The ports an ingress rule admits; `None` is every port.
fn rule_ports(rule: &Value) -> Option<BTreeSet<u64>> {
    let ports = rule["ports"].as_array().filter(|p| !p.is_empty())?;
    Some(
        ports
            .iter()
            .map(|p| p["port"].as_u64().expect("ports by number in the policies"))
            .collect(),
    )
}

#[test]
fn only_the_gateway_pods_may_connect_to_ashi() {
    let ashi = yaml(&read("deploy/base/ashi-deployment.yaml"));
    let gateway = yaml(&read("deploy/base/gateway-deployment.yaml"));
    let ashi_pod = &ashi["spec"]["template"]["metadata"]["labels"];
    let gateway_pod = &gateway["spec"]["template"]["metadata"]["labels"];
    let gateway_selector = &gateway["spec"]["selector"];
    let kustomization = yaml(&read("deploy/base/kustomization.yaml"));
    assert!(
        strings(&kustomization["resources"]).contains(&"ashi-networkpolicy.yaml"),
        "the base deploys ashi-networkpolicy.yaml"
    );

    let policies = policies_for(ashi_pod);
    assert!(
        policies
            .iter()
            .any(|(file, _)| file.ends_with("base/ashi-networkpolicy.yaml")),
        "base/ashi-networkpolicy.yaml selects the ashi pods: {:?}",
        policies.iter().map(|(f, _)| f).collect::<Vec<_>>()
    );
    let mut admitted = BTreeSet::new();
    for (file, policy) in &policies {
        let spec = &policy["spec"];
        assert!(
            strings(&spec["policyTypes"]).contains(&"Ingress"),
            "{file}: policyTypes names Ingress"
        );
        for rule in spec["ingress"].as_array().into_iter().flatten() {
            let peers = rule["from"].as_array().filter(|f| !f.is_empty());
            let peers = peers.unwrap_or_else(|| {
                panic!("{file}: an ingress rule without `from` admits everyone to ashi")
            });
            for peer in peers {
                let keys: Vec<&String> = peer.as_object().expect("a peer").keys().collect();
                assert_eq!(
                    keys,
                    ["podSelector"],
                    "{file}: ashi admits only pods of its namespace (no namespaceSelector, no \
                     ipBlock): {peer}"
                );
                assert_eq!(
                    &peer["podSelector"], gateway_selector,
                    "{file}: ashi admits exactly the gateway Deployment's pods"
                );
                assert!(selects(&peer["podSelector"], gateway_pod));
                assert!(!selects(&peer["podSelector"], ashi_pod));
            }
            match rule_ports(rule) {
                Some(ports) => admitted.extend(ports),
                None => admitted.extend([50051, 50052]),
            }
        }
    }
    // The gateway still reaches ashi's gRPC port (the cluster's endpoint) and its HTTP side.
    let grpc = ashi["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "grpc")
        .and_then(|p| p["containerPort"].as_u64())
        .expect("ashi's grpc port");
    let env = ashi["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let http: SocketAddr = env
        .iter()
        .find(|e| e["name"] == "ASHI_HTTP_LISTEN")
        .and_then(|e| e["value"].as_str())
        .expect("ASHI_HTTP_LISTEN")
        .parse()
        .unwrap();
    for port in [grpc, u64::from(http.port())] {
        assert!(
            admitted.contains(&port),
            "the gateway must still reach ashi on {port}: {admitted:?}"
        );
    }
}

#[test]
fn the_admin_port_is_not_open_to_everyone() {
    let gateway = yaml(&read("deploy/base/gateway-deployment.yaml"));
    let gateway_pod = &gateway["spec"]["template"]["metadata"]["labels"];
    let admin = address_port(&raw("deploy/base/gateway/gateway.yaml")["admin"]["address"]);
    let policies = policies_for(gateway_pod);
    assert!(
        policies
            .iter()
            .any(|(file, _)| file.ends_with("base/gateway-networkpolicy.yaml")),
        "base/gateway-networkpolicy.yaml selects the gateway pods"
    );
    for (file, policy) in &policies {
        for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
            if rule_ports(rule).is_some_and(|p| !p.contains(&admin)) {
                continue;
            }
            let peers = rule["from"].as_array().filter(|f| !f.is_empty());
            let peers = peers.unwrap_or_else(|| {
                panic!("{file}: a rule without `from` opens the admin port {admin} to everyone")
            });
            for peer in peers {
                let everywhere = peer["namespaceSelector"]
                    .as_object()
                    .is_some_and(|s| s.is_empty())
                    || peer["ipBlock"]["cidr"] == "0.0.0.0/0"
                    || peer["ipBlock"]["cidr"] == "::/0";
                assert!(
                    !everywhere,
                    "{file}: {peer} opens the admin port to everyone"
                );
            }
        }
    }
}

fn address_port(value: &Value) -> u64 {
    let address: SocketAddr = value
        .as_str()
        .expect("an address")
        .parse()
        .expect("address");
    u64::from(address.port())
}

#[test]
fn the_nlb_alone_may_send_proxy_headers() {
    // Any peer in `proxy_protocol.from` can name any client, so the list is the NLB's
    // subnets, the same ones its NetworkPolicy lets reach the TLS port.
    let config = raw("deploy/overlays/nlb/gateway.yaml");
    let from: BTreeSet<&str> = config["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| strings(&l["proxy_protocol"]["from"]))
        .collect();
    assert!(!from.is_empty(), "the NLB listener reads PROXY headers");
    let policy = yaml(&read("deploy/overlays/nlb/networkpolicy-nlb.yaml"));
    let blocks: BTreeSet<&str> = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["from"].as_array().unwrap())
        .map(|peer| peer["ipBlock"]["cidr"].as_str().expect("ipBlocks"))
        .collect();
    assert_eq!(
        from, blocks,
        "proxy_protocol.from and networkpolicy-nlb.yaml's ipBlocks name the same NLB subnets"
    );
}

/// The image's build stage (`Dockerfile`) compiles the workspace from its manifests first,
/// with stand-in sources: a workspace member it does not copy makes `cargo build --locked`
/// fail, and a member copied but not stubbed fails it too. No Docker engine runs here, so
/// what the build needs from the repository is checked instead: every member's manifest is
/// copied and stubbed, and every path the image copies exists and is not ignored.
#[test]
fn the_image_build_has_every_workspace_member_and_every_file_it_copies() {
    let dockerfile = read("Dockerfile");
    let manifest = read("Cargo.toml");
    let list = Regex::new(r"(?m)^members\s*=\s*\[([^\]]*)\]")
        .expect("regex")
        .captures(&manifest)
        .map(|c| c[1].to_owned())
        .expect("Cargo.toml lists the workspace members");
    let members: Vec<&str> = list
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    assert!(members.contains(&"crates/sekisho"), "{members:?}");
    let stubbed = Regex::new(r#"members="([^"]+)""#)
        .expect("regex")
        .captures(&dockerfile)
        .map(|c| {
            c[1].split_whitespace()
                .map(str::to_owned)
                .collect::<BTreeSet<_>>()
        })
        .expect("the Dockerfile stubs the members");
    for member in &members {
        let copy = format!("COPY {member}/Cargo.toml {member}/");
        assert!(dockerfile.contains(&copy), "the Dockerfile lacks `{copy}`");
        assert!(stubbed.contains(*member), "{member} has no stand-in source");
    }
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        if line.contains("--from=") {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            if *source == "." {
                continue;
            }
            assert!(
                repo().join(source).exists(),
                "`{line}`: {source} is missing"
            );
            assert!(
                !ignored.iter().any(|i| source.starts_with(i.as_str())),
                "`{line}`: {source} is excluded by .dockerignore"
            );
        }
    }
}
