//! The HTTP rules of `ashi::FILE_DESCRIPTOR_SET` load into the gateway's transcoder and map the
//! REST calls a partner would make to the right gRPC methods; and REST calls, transcoded as the
//! gateway does and sent to a real ashi over gRPC, get the JSON answers the docs promise.

mod common;

use ashi::pb::{CreateUploadRequest, FootDimensions, RegisterMeasurementRequest};
use common::{Backend, Running};
use grpc_transcode::{FrameDecoder, Options, Reply, Status, Transcoder};
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

/// A REST call, the gRPC method it must reach, and the path variables it must bind.
type Case = (
    Method,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

#[test]
fn every_rule_loads_and_routes_to_its_method() {
    let transcoder = Transcoder::new(ashi::FILE_DESCRIPTOR_SET, &Options::default()).unwrap();
    let cases: [Case; 12] = [
        (
            Method::POST,
            "/v1/users/u1/uploads",
            "/ashi.v1.MeasurementService/CreateUpload",
            &[("user_id", "u1")],
        ),
        (
            Method::POST,
            "/v1/users/u1/measurements",
            "/ashi.v1.MeasurementService/RegisterMeasurement",
            &[("user_id", "u1")],
        ),
        (
            Method::GET,
            "/v1/users/u1/measurements",
            "/ashi.v1.MeasurementService/ListMeasurements",
            &[("user_id", "u1")],
        ),
        (
            Method::GET,
            "/v1/users/u1/measurements/m1",
            "/ashi.v1.MeasurementService/GetMeasurement",
            &[("user_id", "u1"), ("measurement_id", "m1")],
        ),
        (
            Method::DELETE,
            "/v1/users/u1/measurements/m1",
            "/ashi.v1.MeasurementService/DeleteMeasurement",
            &[("user_id", "u1"), ("measurement_id", "m1")],
        ),
        (
            Method::POST,
            "/v1/sizing:diagnose",
            "/ashi.v1.SizingService/DiagnoseFoot",
            &[],
        ),
        (
            Method::POST,
            "/v1/sizing:recommend",
            "/ashi.v1.SizingService/RecommendSize",
            &[],
        ),
        (
            Method::POST,
            "/v1/sizing:recommendBatch",
            "/ashi.v1.SizingService/RecommendSizes",
            &[],
        ),
        (
            Method::PUT,
            "/v1/shoes/kaze-runner-3-m",
            "/ashi.v1.CatalogService/UpsertShoe",
            &[("shoe.shoe_id", "kaze-runner-3-m")],
        ),
        (
            Method::GET,
            "/v1/shoes/kaze-runner-3-m",
            "/ashi.v1.CatalogService/GetShoe",
            &[("shoe_id", "kaze-runner-3-m")],
        ),
        (
            Method::GET,
            "/v1/shoes",
            "/ashi.v1.CatalogService/ListShoes",
            &[],
        ),
        (
            Method::POST,
            "/v1/shoes:importCsv",
            "/ashi.v1.CatalogService/ImportShoesCsv",
            &[],
        ),
    ];
    for (method, path, grpc, vars) in cases {
        let call = transcoder
            .resolve(&method, path, None)
            .unwrap()
            .unwrap_or_else(|| panic!("{method} {path} matches no rule"));
        assert_eq!(call.grpc_path(), grpc, "{method} {path}");
        let got: Vec<(&str, &str)> = call
            .path_variables()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, vars, "{method} {path}");
    }
    assert!(
        transcoder
            .resolve(&Method::GET, "/v1/sizing:recommend", None)
            .unwrap()
            .is_none()
    );
}

/// Makes a REST call the way the gateway does: the transcoder turns the JSON into the request
/// message, which goes to ashi over a real HTTP/2 connection as the test service; the answer
/// comes back as the gateway's JSON reply.
async fn rest(server: &Running, method: Method, path: &str, json: &str) -> Reply {
    let transcoder = Transcoder::new(ashi::FILE_DESCRIPTOR_SET, &Options::default()).unwrap();
    let call = transcoder
        .resolve(&method, path, None)
        .unwrap()
        .unwrap_or_else(|| panic!("{method} {path} matches no rule"));
    let message = match call.request(Some("application/json"), json.as_bytes()) {
        Ok(message) => message,
        Err(status) => return transcoder.error_reply(&status),
    };
    let io = TokioIo::new(TcpStream::connect(server.grpc_addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = http::Request::post(format!("http://ashi{}", call.grpc_path()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header(ashi::service::SERVICE_HEADER, common::TEST_SERVICE)
        .body(Full::new(grpc_transcode::frame(&message)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (head, body) = response.into_parts();
    let body = body.collect().await.unwrap();
    // A failed call may answer with trailers only, its status in the headers.
    let trailers = match body.trailers() {
        Some(trailers) if !head.headers.contains_key("grpc-status") => trailers.clone(),
        _ => head.headers.clone(),
    };
    let header = |name: &str| trailers.get(name).map(|v| v.as_bytes());
    let status = Status::from_trailers(
        header("grpc-status"),
        header("grpc-message"),
        header("grpc-status-details-bin"),
    );
    let mut frames = FrameDecoder::new(4 << 20);
    frames.push(&body.to_bytes());
    let answer = frames.next_message().unwrap();
    call.unary_reply(answer.as_deref(), &status)
}

fn json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&reply.body)))
}

/// Feet measured to 0.1 mm, whose differences and margins are not exact in binary.
fn foot(length_mm: f64, width_mm: f64, ball_girth_mm: f64) -> FootDimensions {
    FootDimensions {
        length_mm,
        width_mm,
        ball_girth_mm,
        instep_height_mm: 66.3,
        heel_width_mm: 65.9,
        arch_height_mm: Some(70.3),
        ball_of_foot_length_mm: None,
        toe_tip_offsets_mm: vec![2.1, 0.0, 4.3, 11.7, 19.9],
        toe1_angle_deg: 21.7,
        toe5_angle_deg: 9.3,
    }
}

/// Uploads a scan and registers a measurement of it; returns the measurement reference as
/// REST JSON.
async fn measurement(server: &mut Running) -> String {
    let user = common::unique("user");
    let scan = b"ply\nformat ascii 1.0\nelement vertex 0\nend_header\n";
    let up = server
        .measurements
        .create_upload(CreateUploadRequest {
            user_id: user.clone(),
            content_type: "model/ply".into(),
            content_length: scan.len() as u64,
        })
        .await
        .unwrap()
        .into_inner();
    let headers: Vec<(&str, &str)> = up
        .required_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, text) = common::http("PUT", &up.upload_url, &headers, scan).await;
    assert_eq!(status, 200, "upload refused: {text}");
    let m = server
        .measurements
        .register_measurement(RegisterMeasurementRequest {
            user_id: user.clone(),
            left: Some(foot(255.3, 101.7, 248.9)),
            right: Some(foot(254.1, 100.9, 247.7)),
            scan_object_keys: vec![up.object_key],
            device: "test".into(),
            measured_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    format!(
        r#"{{"userId":"{user}","measurementId":"{}"}}"#,
        m.measurement_id
    )
}

#[tokio::test]
async fn diagnose_without_a_table_names_the_field_and_its_values() {
    let (config, dir) = common::config(&Backend::SqliteLocal);
    let mut server = common::start(config, dir).await;
    let mref = measurement(&mut server).await;
    let accepted = "one of JIS_TABLE_MEN, JIS_TABLE_WOMEN (or 1, 2)";

    let reply = rest(
        &server,
        Method::POST,
        "/v1/sizing:diagnose",
        &format!(r#"{{"measurement":{mref}}}"#),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        json(&reply)["message"],
        format!("table: is required; {accepted}")
    );

    let reply = rest(
        &server,
        Method::POST,
        "/v1/sizing:diagnose",
        &format!(r#"{{"measurement":{mref},"table":7}}"#),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        json(&reply)["message"],
        format!("table: 7 is not a JIS table; {accepted}")
    );

    for table in [r#""JIS_TABLE_WOMEN""#, "1"] {
        let reply = rest(
            &server,
            Method::POST,
            "/v1/sizing:diagnose",
            &format!(r#"{{"measurement":{mref},"table":{table}}}"#),
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    server.stop().await;
}

/// Every number in `value` with the decimals its field is given to: three for the ratios,
/// one for millimetres, degrees and the penalty. Returns how many numbers were checked.
fn check_precision(value: &Value, key: &str, path: &str) -> usize {
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap();
            let steps = if matches!(key, "archHeightIndex" | "confidence") {
                1000.0
            } else {
                10.0
            };
            assert_eq!(
                x,
                (x * steps).round() / steps,
                "{path} is {x}, with more decimals than it is measured to"
            );
            1
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| check_precision(item, key, &format!("{path}[{i}]")))
            .sum(),
        Value::Object(fields) => fields
            .iter()
            .map(|(name, field)| check_precision(field, name, &format!("{path}.{name}")))
            .sum(),
        _ => 0,
    }
}

#[tokio::test]
async fn answers_carry_numbers_as_measured() {
    let (config, dir) = common::config(&Backend::SqliteLocal);
    let mut server = common::start(config, dir).await;
    let mref = measurement(&mut server).await;

    let reply = rest(
        &server,
        Method::POST,
        "/v1/sizing:diagnose",
        &format!(r#"{{"measurement":{mref},"table":"JIS_TABLE_MEN"}}"#),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let diagnosis = json(&reply);
    assert!(check_precision(&diagnosis, "", "diagnosis") >= 6);
    assert_eq!(diagnosis["lengthDifferenceMm"], 1.2);
    assert_eq!(diagnosis["widthDifferenceMm"], 0.8);
    // 70.3 / (255.3 x 0.740) = 0.37211...
    assert_eq!(diagnosis["left"]["archHeightIndex"], 0.372);

    let reply = rest(
        &server,
        Method::POST,
        "/v1/sizing:recommendBatch",
        &format!(r#"{{"measurement":{mref},"shoeIds":["kaze-runner-3-m","kaze-runner-3-m"]}}"#),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let batch = json(&reply);
    assert!(check_precision(&batch, "", "recommendations") >= 20);
    // 269.5 mm inside, 255.3 mm foot; 247.5 mm inner girth, 248.9 mm foot.
    let best = &batch["recommendations"][0]["best"];
    assert_eq!(best["size"]["sizeMm"], 255);
    assert_eq!(best["length"]["marginMm"], 14.2);
    assert_eq!(best["ballGirth"]["marginMm"], -1.4);

    let reply = rest(
        &server,
        Method::POST,
        "/v1/sizing:recommend",
        &format!(r#"{{"measurement":{mref},"shoeId":"kaze-runner-3-m"}}"#),
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(check_precision(&json(&reply), "", "recommendation") >= 10);
    server.stop().await;
}
