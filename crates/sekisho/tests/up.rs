//! `sekisho up`, as a new user meets it: the real binary started on a fresh data directory,
//! the commands it prints followed, Ctrl-C to stop it. A partner calls REST from an allowed
//! address, an app calls gRPC over TLS with the printed token, and a real browser signs in
//! on the page and asks for a shoe size over gRPC-Web.
//!
//! The browser test needs Chromium and the Node packages of `tests/browser` (`npm ci`;
//! `scripts/test` installs both); without them it fails, unless `SEKISHO_TEST_SKIP=browser`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ashi::pb::measurement_service_client::MeasurementServiceClient;
use ashi::pb::sizing_service_client::SizingServiceClient;
use ashi::pb::{ListMeasurementsRequest, MeasurementRef, RecommendSizeRequest};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// A running `sekisho up` and what its banner told.
struct Up {
    child: Child,
    port: u16,
    cert: PathBuf,
    token: String,
    measurement_id: String,
    shoe_id: String,
    /// Lines printed after the banner (the access log).
    log: Arc<Mutex<Vec<String>>>,
}

impl Up {
    async fn start(data: &Path) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sekisho"))
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start sekisho up");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut banner = String::new();
        let read_banner = async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                banner.push_str(&line);
                banner.push('\n');
                if line.contains("Ctrl-C stops everything") {
                    return;
                }
            }
            panic!("sekisho up ended before printing its banner:\n{banner}");
        };
        tokio::time::timeout(Duration::from_secs(60), read_banner)
            .await
            .expect("banner within a minute");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let after = |marker: &str| -> String {
            let start = banner
                .find(marker)
                .unwrap_or_else(|| panic!("banner lacks {marker:?}:\n{banner}"))
                + marker.len();
            banner[start..]
                .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
                .next()
                .unwrap()
                .to_owned()
        };
        let url = after("gRPC-Web on ");
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
        Up {
            child,
            port,
            cert: PathBuf::from(after("the certificate is self-signed: ")),
            token: after("export TOKEN="),
            measurement_id: after("\"measurement_id\": \""),
            shoe_id: after("\"shoe_id\": \""),
            log,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }

    async fn channel(&self) -> Channel {
        let ca = std::fs::read_to_string(&self.cert).expect("read the printed certificate");
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("localhost");
        Endpoint::from_shared(format!("https://127.0.0.1:{}", self.port))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .expect("gRPC over TLS to the gateway")
    }

    fn with_token<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    /// Ctrl-C, as a person at the terminal stops it; returns whether it exited cleanly.
    async fn interrupt(mut self) -> bool {
        let pid = self.child.id().expect("still running");
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stops within 30 s of Ctrl-C")
            .expect("wait for sekisho up");
        status.success()
    }
}

#[tokio::test]
async fn up_serves_partners_over_rest_and_apps_over_grpc_then_stops_on_ctrl_c() {
    let data = TempDir::new("up");
    let up = Up::start(data.path()).await;

    // The partner REST call from the banner, over TLS trusting the printed certificate.
    let ca = std::fs::read_to_string(&up.cert).unwrap();
    let tls = tls_config(&[&ca], &[b"http/1.1"]);
    let stream = tls_connect(([127, 0, 0, 1], up.port).into(), "localhost", tls)
        .await
        .expect("TLS handshake with the printed certificate");
    let mut partner = H1Conn::handshake(stream).await;
    let shoes = partner
        .send(get_h1("localhost", "/v1/shoes").body(empty()).unwrap())
        .await;
    assert_eq!(shoes.status, 200, "{}", shoes.text());
    let listed = shoes.json();
    assert!(
        listed["shoes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["shoeId"] == up.shoe_id.as_str()),
        "the demo catalog holds the banner's shoe: {listed}"
    );

    // An app without a token is refused; with the printed one it sees the demo measurement.
    let mut app = MeasurementServiceClient::new(up.channel().await);
    let list = ListMeasurementsRequest {
        user_id: "demo".into(),
        page_size: 10,
        page_token: String::new(),
    };
    let refused = app.list_measurements(list.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let measurements = app
        .list_measurements(up.with_token(list.clone()))
        .await
        .expect("the printed token is accepted")
        .into_inner()
        .measurements;
    assert_eq!(measurements.len(), 1);
    assert_eq!(measurements[0].measurement_id, up.measurement_id);
    // The demo user's token does not reach another user's measurements.
    let someone_else = ListMeasurementsRequest {
        user_id: "someone-else".into(),
        ..list.clone()
    };
    let denied = app
        .list_measurements(up.with_token(someone_else))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    // Access log lines on stdout name the routes that served them.
    let log = up.log.clone();
    eventually(Duration::from_secs(10), "access log lines", || {
        let log = log.clone();
        async move {
            let lines = log.lock().unwrap().clone();
            (lines
                .iter()
                .any(|l| l.contains("\"route\":\"partner-rest\""))
                && lines
                    .iter()
                    .any(|l| l.contains("\"route\":\"app-MeasurementService\"")))
            .then_some(())
        }
    })
    .await;
    let token = up.token.clone();
    assert!(up.interrupt().await, "Ctrl-C ends with exit status 0");

    // A second start on the same directory keeps the data and the signing key: the old
    // token still works and the demo measurement is not registered twice.
    let again = Up::start(data.path()).await;
    assert_eq!(again.measurement_id, measurements[0].measurement_id);
    let mut app = MeasurementServiceClient::new(again.channel().await);
    let mut request = tonic::Request::new(list);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let kept = app.list_measurements(request).await.unwrap().into_inner();
    assert_eq!(kept.measurements.len(), 1);
    assert!(again.interrupt().await);
}

#[tokio::test]
async fn a_second_up_on_the_same_data_directory_is_refused() {
    let data = TempDir::new("up-twice");
    let first = Up::start(data.path()).await;
    let second = Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(data.path())
        .output()
        .await
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another `sekisho up`"),
        "{stderr}"
    );
    // The first one still serves.
    let mut app = MeasurementServiceClient::new(first.channel().await);
    let listed = app
        .list_measurements(first.with_token(ListMeasurementsRequest {
            user_id: "demo".into(),
            page_size: 1,
            page_token: String::new(),
        }))
        .await;
    assert!(listed.is_ok(), "{listed:?}");
    assert!(first.interrupt().await);
}

#[tokio::test]
async fn a_person_signs_in_on_the_page_and_gets_a_shoe_size() {
    let Some(chromium) = chromium() else {
        return browser_cannot_run("no chromium on PATH");
    };
    let driver_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"));
    if !driver_dir.join("node_modules/playwright-core").is_dir() {
        return browser_cannot_run("playwright-core is not installed (npm ci in tests/browser)");
    }
    let data = TempDir::new("up-web");
    let up = Up::start(data.path()).await;
    // Kept after the run, to be looked at: the page at 1280, 768 and 360 px wide.
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page");

    // What ashi says of every shoe in the catalog for the demo user's latest measurement: the
    // page should choose a shoe that fits, and say plainly of the worst one that nothing fits.
    let mut app = MeasurementServiceClient::new(up.channel().await);
    let measurement = app
        .list_measurements(up.with_token(ListMeasurementsRequest {
            user_id: "demo".into(),
            page_size: 1,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .measurements
        .remove(0);
    let measurement_ref = MeasurementRef {
        user_id: "demo".into(),
        measurement_id: measurement.measurement_id.clone(),
    };
    let shoes = ashi::pb::catalog_service_client::CatalogServiceClient::new(up.channel().await)
        .list_shoes(up.with_token(ashi::pb::ListShoesRequest {
            page_size: 100,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .shoes;
    let recommendations = SizingServiceClient::new(up.channel().await)
        .recommend_sizes(up.with_token(ashi::pb::RecommendSizesRequest {
            measurement: Some(measurement_ref.clone()),
            shoe_ids: shoes.iter().map(|shoe| shoe.shoe_id.clone()).collect(),
        }))
        .await
        .unwrap()
        .into_inner()
        .recommendations;
    let recommendation_for = |shoe_id: &str| {
        recommendations
            .iter()
            .find(|r| r.shoe_id == shoe_id)
            .unwrap_or_else(|| panic!("no recommendation for {shoe_id}"))
    };
    let poor = recommendations
        .iter()
        .min_by(|a, b| a.confidence.total_cmp(&b.confidence))
        .expect("the demo catalog has shoes");
    let good = ashi::pb::Fit::Good as i32;
    assert_ne!(
        poor.best.as_ref().unwrap().length.unwrap().fit,
        good,
        "the demo catalog has a shoe with no size for the demo feet: {poor:?}"
    );
    let top_confidence = recommendations
        .iter()
        .map(|r| r.confidence)
        .fold(0.0, f64::max);

    let output = Command::new("node")
        .arg("web-flow.mjs")
        .arg(&chromium)
        .arg(up.url())
        .arg(&poor.shoe_id)
        .arg(&screenshots)
        .current_dir(&driver_dir)
        .output()
        .await
        .expect("run node");
    assert!(
        output.status.success(),
        "the page flow failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stdout));
    });
    eprintln!(
        "page showed: {shown}\nscreenshots: {}",
        screenshots.display()
    );

    // The page drew both feet with their measured lengths and showed a diagnosis per foot.
    assert_eq!(shown["error"], serde_json::Value::Null, "{shown}");
    assert_eq!(shown["feet"], 2, "{shown}");
    let marks: Vec<&str> = shown["marks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    for foot in [&measurement.left, &measurement.right] {
        let length = format!("length: {:.0} mm", foot.as_ref().unwrap().length_mm);
        assert!(marks.contains(&length.as_str()), "{length} in {marks:?}");
    }
    // Each foot's JIS size is ashi's, and its size and width class show once: the width class
    // is part of the size ("26.5 E"), not repeated in a column of its own.
    let diagnosed = SizingServiceClient::new(up.channel().await)
        .diagnose_foot(up.with_token(ashi::pb::DiagnoseFootRequest {
            measurement: Some(measurement_ref.clone()),
            table: ashi::pb::JisTable::Men as i32,
            toe_tolerance_mm: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let diagnosis = shown["diagnosis"].as_array().unwrap();
    assert_eq!(diagnosis.len(), 2);
    for (shown_foot, foot) in diagnosis.iter().zip([&diagnosed.left, &diagnosed.right]) {
        let jis = foot.as_ref().unwrap().jis.as_ref().unwrap();
        assert_eq!(shown_foot["jis"], jis.label.as_str(), "{shown}");
        let cells: Vec<&str> = shown_foot["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        let size = format!("{}.{}", jis.size_mm / 10, jis.size_mm % 10);
        for word in [size.as_str(), jis.width_class.as_str()] {
            let showing = cells
                .iter()
                .filter(|cell| cell.split_whitespace().any(|w| w == word))
                .count();
            assert_eq!(showing, 1, "{word:?} in {cells:?}");
        }
    }

    let fit_name = |fit: i32| match ashi::pb::Fit::try_from(fit) {
        Ok(ashi::pb::Fit::Tight) => "tight",
        Ok(ashi::pb::Fit::Good) => "good",
        Ok(ashi::pb::Fit::Loose) => "loose",
        _ => "—",
    };
    // The size shown is the one ashi recommends for that shoe, with its fit per dimension.
    let shows_ashis_size = |seen: &serde_json::Value, rec: &ashi::pb::Recommendation| {
        let best = rec.best.as_ref().unwrap();
        assert_eq!(seen["shownFor"], rec.shoe_id.as_str(), "{seen}");
        assert_eq!(
            seen["sizeMm"],
            best.size.as_ref().unwrap().size_mm,
            "{seen}"
        );
        for (name, fit) in [
            ("Length", best.length),
            ("Ball girth", best.ball_girth),
            ("Width", best.width),
        ] {
            let expected = fit.map_or(serde_json::Value::Null, |f| fit_name(f.fit).into());
            assert_eq!(seen["fits"][name], expected, "{name}: {seen}");
        }
    };

    // Signed in, the page chose by itself a shoe whose best size is good in every dimension,
    // a fit no other shoe of the catalog beats, and said "Your size".
    let chosen = &shown["chosen"];
    let chosen_id = chosen["shoe"].as_str().unwrap();
    let chosen_rec = recommendation_for(chosen_id);
    shows_ashis_size(chosen, chosen_rec);
    assert_eq!(chosen["shoeFirstListed"], chosen_id, "{chosen}");
    assert_ne!(chosen_id, poor.shoe_id, "{chosen}");
    assert_eq!(chosen_rec.confidence, top_confidence, "{chosen_rec:?}");
    let chosen_best = chosen_rec.best.as_ref().unwrap();
    assert!(
        [
            chosen_best.length,
            chosen_best.ball_girth,
            chosen_best.width
        ]
        .iter()
        .flatten()
        .all(|d| d.fit == good),
        "{chosen_rec:?}"
    );
    assert_eq!(chosen["fit"], "good", "{chosen}");
    assert!(
        chosen["verdict"]
            .as_str()
            .unwrap()
            .starts_with("Your size: "),
        "{chosen}"
    );

    // Picked by hand, the shoe that fits worst says plainly that no size fits, and why,
    // instead of "Your size"; its table shows the closest size.
    let picked = &shown["picked"];
    shows_ashis_size(picked, poor);
    assert_eq!(picked["fit"], "none", "{picked}");
    assert_eq!(
        picked["verdict"], "No size of this shoe fits your feet well.",
        "{picked}"
    );
    let closest = poor.best.as_ref().unwrap().size.as_ref().unwrap().size_mm;
    let closest = format!("{}.{} cm", closest / 10, closest % 10);
    let detail = picked["detail"].as_str().unwrap();
    assert!(
        detail.contains(&closest) && detail.contains(" is too "),
        "{picked}"
    );
    assert!(
        !picked["text"].as_str().unwrap().contains("Your size"),
        "{picked}"
    );

    // Nothing is wider than the viewport or sticks out of its card, on a phone, a tablet and
    // a desktop, in both states; a table may only scroll inside its own box.
    let layouts = shown["layouts"].as_array().unwrap();
    for state in ["best-fit", "poor-fit"] {
        for width in [360, 768, 1280] {
            let layout = layouts
                .iter()
                .find(|l| l["state"] == state && l["width"] == width)
                .unwrap_or_else(|| panic!("no layout for {state} at {width} px: {shown}"));
            let at = format!("{state} at {width} px: {layout}");
            assert_eq!(layout["innerWidth"], width, "{at}");
            assert!(
                layout["scrollWidth"].as_u64() <= layout["innerWidth"].as_u64(),
                "the page scrolls sideways, {at}"
            );
            let cards = layout["cards"].as_array().unwrap();
            assert_eq!(cards.len(), 2, "{at}");
            for card in cards {
                assert!(
                    card["scrollWidth"].as_u64() <= card["clientWidth"].as_u64(),
                    "a card overflows, {at}"
                );
            }
            assert_eq!(layout["overflowing"], serde_json::json!([]), "{at}");
        }
    }
    for path in shown["screenshots"].as_array().unwrap() {
        assert!(
            Path::new(path.as_str().unwrap()).is_file(),
            "{path} was saved"
        );
    }

    // Every call after sign-in went through the gateway as gRPC-Web.
    let calls: Vec<&str> = shown["grpcWebCalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for call in [
        "/ashi.v1.MeasurementService/ListMeasurements",
        "/ashi.v1.SizingService/DiagnoseFoot",
        "/ashi.v1.CatalogService/ListShoes",
        "/ashi.v1.SizingService/RecommendSizes",
    ] {
        assert!(calls.contains(&call), "{call} in {calls:?}");
    }
    assert_eq!(shown["consoleErrors"], serde_json::json!([]), "{shown}");
    let log = up.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.contains("\"protocol\":\"grpc-web\"") && l.contains("RecommendSizes")),
        "the access log shows the page's gRPC-Web calls"
    );
    assert!(up.interrupt().await);
}

/// The printed token is the demo user's alone. By gRPC, gRPC-Web (over HTTP/1.1 with
/// `Connection` naming the forwarded subject, and over HTTP/2) and REST, it reads no other
/// user's measurements, and another user's token (signed by the same demo identity) reads none
/// of the demo user's. The partner REST route serves no user data and no catalog writes.
#[tokio::test]
async fn the_printed_token_reaches_no_other_users_data() {
    use ashi::pb::GetMeasurementRequest;
    use http::Method;

    let data = TempDir::new("up-hostile");
    let up = Up::start(data.path()).await;
    let mallory = token_for_another_user(&up, data.path(), "mallory");
    let demo = &up.token;
    let id = up.measurement_id.clone();
    let list = |user: &str| ListMeasurementsRequest {
        user_id: user.into(),
        page_size: 10,
        page_token: String::new(),
    };
    let get_demo = GetMeasurementRequest {
        user_id: "demo".into(),
        measurement_id: id.clone(),
    };

    // gRPC over TLS: the demo user reads their own, nobody else's; mallory reads none of theirs.
    let mut app = MeasurementServiceClient::new(up.channel().await);
    let own = app
        .list_measurements(up.with_token(list("demo")))
        .await
        .expect("the printed token reads the demo user's measurements");
    assert_eq!(own.into_inner().measurements[0].measurement_id, id);
    let denied = app
        .list_measurements(with_bearer(demo, list("someone-else")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let denied = app
        .list_measurements(with_bearer(&mallory, list("demo")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let denied = app
        .get_measurement(with_bearer(&mallory, get_demo.clone()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    // gRPC-Web, as the page calls it.
    const LIST: &str = "/ashi.v1.MeasurementService/ListMeasurements";
    const GET: &str = "/ashi.v1.MeasurementService/GetMeasurement";
    let own = up_web(
        &up,
        b"http/1.1",
        LIST,
        grpc_frame(&list("demo")),
        demo,
        None,
    )
    .await;
    assert_eq!(grpc_web_status(&own), Some(0), "{}", own.text());
    assert!(own.text().contains(&id), "{}", own.text());
    let attempts = [
        (demo.as_str(), LIST, grpc_frame(&list("someone-else"))),
        (mallory.as_str(), LIST, grpc_frame(&list("demo"))),
        (mallory.as_str(), GET, grpc_frame(&get_demo)),
    ];
    let wires: [(&[u8], Option<&str>); 5] = [
        (b"http/1.1", None),
        (b"http/1.1", Some("x-user-id")),
        (b"http/1.1", Some("X-User-Id, close")),
        (
            b"http/1.1",
            Some("x-forwarded-for, x-ashi-service, x-user-id"),
        ),
        (b"h2", None),
    ];
    for (alpn, connection) in wires {
        for (token, path, body) in &attempts {
            let reply = up_web(&up, alpn, path, body.clone(), token, connection).await;
            let what = format!(
                "gRPC-Web {} {path} Connection {connection:?}",
                String::from_utf8_lossy(alpn)
            );
            assert_eq!(grpc_web_status(&reply), Some(7), "{what}: {}", reply.text());
            assert!(!reply.text().contains(&id), "{what}: {}", reply.text());
        }
    }

    // REST from the partner's allowed address: no user routes, with any token or none.
    let one = format!("/v1/users/demo/measurements/{id}");
    let rest_reads: [(&str, Option<&str>); 5] = [
        ("/v1/users/demo/measurements", None),
        (&one, None),
        ("/v1/users/demo/measurements", Some(&mallory)),
        ("/v1/users/someone-else/measurements", Some(demo)),
        (&one, Some(&mallory)),
    ];
    for (path, token) in rest_reads {
        for connection in [None, Some("x-user-id")] {
            let reply = up_rest(&up, Method::GET, path, token, connection, None).await;
            let what = format!("REST {path} token {} {connection:?}", token.is_some());
            assert!(!reply.status.is_success(), "{what}: {}", reply.text());
            assert!(!reply.text().contains(&id), "{what}: {}", reply.text());
        }
    }

    // Catalog writes over REST are refused, with the printed token or without one.
    let shoe = serde_json::json!({
        "shoeId": "hostile-up", "brand": "Hostile", "model": "Intruder",
        "category": "SHOE_CATEGORY_RUNNING", "gender": "GENDER_MEN",
        "unitSystem": "UNIT_SYSTEM_JIS_MM",
        "sizes": [{"sizeMm": 250, "innerLengthMm": 264.5, "innerBallGirthMm": 244.5}],
    });
    let csv = serde_json::json!({"csv": format!(
        "shoe_id,brand,model,category,gender,unit_system,size_mm,inner_length_mm,\
         inner_ball_girth_mm,inner_width_mm,label_eu,label_uk,label_us\n\
         hostile-up-csv,Hostile,Intruder,running,men,us,250,264.5,244.5,101.2,40,6,7\n"
    )});
    for token in [None, Some(demo.as_str())] {
        let put = up_rest(
            &up,
            Method::PUT,
            "/v1/shoes/hostile-up",
            token,
            None,
            Some(&shoe),
        );
        let put = put.await;
        assert!(!put.status.is_success(), "PUT a shoe: {}", put.text());
        let import = up_rest(
            &up,
            Method::POST,
            "/v1/shoes:importCsv",
            token,
            None,
            Some(&csv),
        );
        let import = import.await;
        assert!(
            !import.status.is_success(),
            "import shoes: {}",
            import.text()
        );
    }
    for (shoe, status) in [
        ("hostile-up", 404),
        ("hostile-up-csv", 404),
        (&*up.shoe_id, 200),
    ] {
        let path = format!("/v1/shoes/{shoe}");
        let reply = up_rest(&up, Method::GET, &path, None, None, None).await;
        assert_eq!(reply.status, status, "GET {path}: {}", reply.text());
    }
    assert!(up.interrupt().await);
}

/// `message` with `token` as a bearer token.
fn with_bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .expect("token as metadata");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A token for `sub` from the demo identity: the printed token's header and claims with another
/// subject, signed with the key `up` keeps in its data directory.
fn token_for_another_user(up: &Up, data: &Path, sub: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let part = |i: usize| -> serde_json::Value {
        let text = up.token.split('.').nth(i).expect("a JWS part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64url")).expect("JSON")
    };
    let (header, mut claims) = (part(0), part(1));
    claims["sub"] = sub.into();
    let pem = std::fs::read(data.join("identity/signing-key.pem")).expect("the demo signing key");
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("an EC key");
    let mut jws = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jws.kid = header["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(&jws, &claims, &key).expect("sign")
}

/// A TLS connection to `up`'s port offering `alpn` (`http/1.1` or `h2`).
async fn up_tls(up: &Up, alpn: &[u8]) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let ca = std::fs::read_to_string(&up.cert).expect("the printed certificate");
    tls_connect(
        ([127, 0, 0, 1], up.port).into(),
        "localhost",
        tls_config(&[&ca], &[alpn]),
    )
    .await
    .expect("TLS handshake")
}

/// Sends `request` (origin-form path) over a fresh TLS connection offering `alpn`.
async fn up_send(
    up: &Up,
    alpn: &[u8],
    mut request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> HttpResponse {
    let stream = up_tls(up, alpn).await;
    let authority = format!("localhost:{}", up.port);
    if alpn == b"h2" {
        let path = request.uri().path_and_query().unwrap().as_str().to_owned();
        *request.uri_mut() = format!("https://{authority}{path}").parse().unwrap();
        *request.version_mut() = http::Version::HTTP_2;
        H2Conn::handshake(stream).await.send(request).await
    } else {
        request
            .headers_mut()
            .insert(http::header::HOST, authority.parse().unwrap());
        H1Conn::handshake(stream).await.send(request).await
    }
}

/// A binary gRPC-Web call with `token`, and on HTTP/1.1 a `Connection` header if given.
async fn up_web(
    up: &Up,
    alpn: &[u8],
    path: &str,
    body: bytes::Bytes,
    token: &str,
    connection: Option<&str>,
) -> HttpResponse {
    let mut request = http::Request::post(path)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("authorization", format!("Bearer {token}"));
    if let Some(connection) = connection {
        request = request.header("connection", connection);
    }
    let request = request.body(http_body_util::Full::new(body)).unwrap();
    up_send(up, alpn, request).await
}

/// A REST call over HTTP/1.1 with an optional token, `Connection` header and JSON body.
async fn up_rest(
    up: &Up,
    method: http::Method,
    path: &str,
    token: Option<&str>,
    connection: Option<&str>,
    json: Option<&serde_json::Value>,
) -> HttpResponse {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(connection) = connection {
        request = request.header("connection", connection);
    }
    let body = match json {
        Some(json) => {
            request = request.header("content-type", "application/json");
            bytes::Bytes::from(json.to_string())
        }
        None => bytes::Bytes::new(),
    };
    let request = request.body(http_body_util::Full::new(body)).unwrap();
    up_send(up, b"http/1.1", request).await
}

/// Asks ashi's server reflection, through the gateway, for the services it serves and for
/// the file that declares `symbol`, in one stream as grpcurl does.
async fn reflect(
    up: &Up,
    token: bool,
    symbol: &str,
) -> (
    Vec<String>,
    grpc_transcode::prost_reflect::prost_types::FileDescriptorProto,
) {
    use grpc_transcode::prost_reflect::prost::Message as _;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let asks = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol(symbol.to_owned()),
    ]
    .map(|ask| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(ask),
    });
    let asks = tokio_stream::iter(asks);
    let request = if token {
        up.with_token(asks)
    } else {
        tonic::Request::new(asks)
    };
    let mut client = ServerReflectionClient::new(up.channel().await);
    let mut answers = client
        .server_reflection_info(request)
        .await
        .unwrap_or_else(|e| panic!("reflection through the gateway (token: {token}): {e:?}"))
        .into_inner();
    let mut services = None;
    let mut file = None;
    while let Some(answer) = answers.message().await.expect("a reflection answer") {
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                services = Some(list.service.into_iter().map(|s| s.name).collect());
            }
            Some(MessageResponse::FileDescriptorResponse(files)) => {
                let bytes = files.file_descriptor_proto.first().expect("one file");
                file = Some(
                    grpc_transcode::prost_reflect::prost_types::FileDescriptorProto::decode(
                        &bytes[..],
                    )
                    .expect("an encoded FileDescriptorProto"),
                );
            }
            other => panic!("unexpected reflection answer: {other:?}"),
        }
    }
    (
        services.expect("the service list"),
        file.expect("the file of the symbol"),
    )
}

/// Health of `service` ("" for the server) through the gateway, as a probe or grpcurl asks.
async fn health(up: &Up, token: bool, service: &str) -> i32 {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let ask = HealthCheckRequest {
        service: service.to_owned(),
    };
    let request = if token {
        up.with_token(ask)
    } else {
        tonic::Request::new(ask)
    };
    HealthClient::new(up.channel().await)
        .check(request)
        .await
        .unwrap_or_else(|e| panic!("Health/Check {service:?} (token: {token}): {e:?}"))
        .into_inner()
        .status
}

#[tokio::test]
async fn reflection_and_health_answer_tools_through_the_gateway_without_a_token() {
    use tonic_health::pb::health_check_response::ServingStatus;

    let data = TempDir::new("up-tools");
    let up = Up::start(data.path()).await;

    // The `grpc-tools` route needs no token (they reveal no user data); a token does no harm.
    for token in [false, true] {
        let (services, file) = reflect(&up, token, "ashi.v1.SizingService").await;
        for expected in [
            "ashi.v1.MeasurementService",
            "ashi.v1.SizingService",
            "ashi.v1.CatalogService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ] {
            assert!(
                services.iter().any(|s| s == expected),
                "reflection lists {expected} (token: {token}): {services:?}"
            );
        }
        assert_eq!(file.package(), "ashi.v1");
        assert!(
            file.service.iter().any(|s| s.name() == "SizingService"),
            "the file declaring the symbol: {:?}",
            file.name()
        );
        for service in ["", "ashi.v1.MeasurementService"] {
            assert_eq!(
                health(&up, token, service).await,
                ServingStatus::Serving as i32,
                "{service:?} (token: {token})"
            );
        }
    }

    // What reflection lists still needs the token to be called.
    let mut sizing = SizingServiceClient::new(up.channel().await);
    let refused = sizing
        .recommend_size(RecommendSizeRequest::default())
        .await
        .expect_err("an app route without a token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    // Both tools took the route meant for them (its path_regex matched the whole path).
    let log = up.log.clone();
    eventually(
        Duration::from_secs(10),
        "access log lines of the tools",
        || {
            let log = log.clone();
            async move {
                let lines = log.lock().unwrap().clone();
                let took = |path: &str| {
                    lines.iter().any(|l| {
                        l.contains("\"route\":\"grpc-tools\"")
                            && l.contains(&format!("\"path\":\"{path}\""))
                    })
                };
                (took("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                    && took("/grpc.health.v1.Health/Check"))
                .then_some(())
            }
        },
    )
    .await;
    assert!(up.interrupt().await, "Ctrl-C ends with exit status 0");
}
