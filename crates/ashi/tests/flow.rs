//! The whole user journey through a real tonic client and real HTTP uploads: create an
//! upload, PUT the scan to the presigned URL, register, diagnose, recommend, list, delete.
//! Runs on SQLite + the local store, and on PostgreSQL + an S3-compatible server that checks
//! SigV4 signatures (set up by `scripts/test`).

mod common;

use ashi::pb::*;
use common::{Backend, Running};
use std::time::Duration;
use tonic::Code;

fn foot(length_mm: f64, ball_girth_mm: f64) -> FootDimensions {
    FootDimensions {
        length_mm,
        width_mm: 101.0,
        ball_girth_mm,
        instep_height_mm: 66.0,
        heel_width_mm: 66.0,
        arch_height_mm: Some(70.0),
        ball_of_foot_length_mm: Some(190.0),
        toe_tip_offsets_mm: vec![3.0, 0.0, 4.0, 11.0, 19.0],
        toe1_angle_deg: 22.0,
        toe5_angle_deg: 9.0,
    }
}

/// Creates an upload and PUTs `body` to it; returns the object key.
async fn upload(server: &mut Running, user_id: &str, body: &[u8]) -> String {
    let up = server
        .measurements
        .create_upload(CreateUploadRequest {
            user_id: user_id.into(),
            content_type: "model/ply".into(),
            content_length: body.len() as u64,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(up.method, "PUT");
    assert!(up.object_key.starts_with(&format!("scans/{user_id}/")));
    let headers: Vec<(&str, &str)> = up
        .required_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, text) = common::http("PUT", &up.upload_url, &headers, body).await;
    assert_eq!(status, 200, "upload refused: {text}");
    up.object_key
}

fn register(user_id: &str, keys: Vec<String>, measured_at_s: i64) -> RegisterMeasurementRequest {
    RegisterMeasurementRequest {
        user_id: user_id.into(),
        left: Some(foot(250.0, 243.0)),
        right: Some(foot(256.0, 250.0)),
        scan_object_keys: keys,
        device: "ashi-mat-2 / test phone".into(),
        measured_at: Some(prost_types::Timestamp {
            seconds: measured_at_s,
            nanos: 0,
        }),
    }
}

async fn whole_flow(backend: Backend) {
    let (config, dir) = common::config(&backend);
    let mut server = common::start(config, dir).await;
    let objects = common::objects(&server.config);
    let user = common::unique("user");
    let scan = b"ply\nformat ascii 1.0\nelement vertex 0\nend_header\n".repeat(20);

    // Upload two scans.
    let key1 = upload(&mut server, &user, &scan).await;
    let key2 = upload(&mut server, &user, &scan[..100]).await;
    assert!(objects.exists(&key1).await.unwrap());

    // A signed GET URL downloads the scan as uploaded; a tampered one is refused.
    let get_url = objects.presign_get(&key1, Duration::from_secs(60));
    let (status, text) = common::http("GET", &get_url, &[], b"").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text.as_bytes(), scan.as_slice());
    let other_key = get_url.replace(&key1, &key2);
    let (status, _) = common::http("GET", &other_key, &[], b"").await;
    assert_eq!(
        status, 403,
        "a URL signed for one scan must not open another"
    );

    // A scan that was never uploaded is refused, naming the field.
    let missing = format!("scans/{user}/never-uploaded.ply");
    let err = server
        .measurements
        .register_measurement(register(&user, vec![key1.clone(), missing], 1_700_000_000))
        .await
        .unwrap_err();
    common::assert_status(&err, Code::InvalidArgument, "scan_object_keys[1]:");

    // So is an implausible foot.
    let mut bad = register(&user, vec![key1.clone()], 1_700_000_000);
    bad.right = Some(foot(90.0, 250.0));
    let err = server
        .measurements
        .register_measurement(bad)
        .await
        .unwrap_err();
    common::assert_status(&err, Code::InvalidArgument, "right.length_mm:");

    // Another user's upload cannot be claimed.
    let err = server
        .measurements
        .register_measurement(register("someone-else", vec![key1.clone()], 1_700_000_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Register two measurements, the second scanned later.
    let older = server
        .measurements
        .register_measurement(register(&user, vec![key1.clone()], 1_700_000_000))
        .await
        .unwrap()
        .into_inner();
    let newer = server
        .measurements
        .register_measurement(register(&user, vec![key2.clone()], 1_700_100_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(older.left.as_ref().unwrap().length_mm, 250.0);

    // A scan already in a measurement cannot be registered again, and the failed insert
    // leaves no measurement behind.
    let err = server
        .measurements
        .register_measurement(register(&user, vec![key1.clone()], 1_700_200_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("already belongs"),
        "{}",
        err.message()
    );

    // Newest first, one per page.
    let page1 = server
        .measurements
        .list_measurements(ListMeasurementsRequest {
            user_id: user.clone(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page1.measurements.len(), 1);
    assert_eq!(page1.measurements[0].measurement_id, newer.measurement_id);
    assert!(!page1.next_page_token.is_empty());
    let page2 = server
        .measurements
        .list_measurements(ListMeasurementsRequest {
            user_id: user.clone(),
            page_size: 1,
            page_token: page1.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.measurements.len(), 1);
    assert_eq!(page2.measurements[0].measurement_id, older.measurement_id);
    assert!(
        page2.next_page_token.is_empty(),
        "only two measurements exist"
    );

    // Get returns what was stored.
    let got = server
        .measurements
        .get_measurement(GetMeasurementRequest {
            user_id: user.clone(),
            measurement_id: older.measurement_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, older);

    // Diagnose.
    let mref = MeasurementRef {
        user_id: user.clone(),
        measurement_id: older.measurement_id.clone(),
    };
    let d = server
        .sizing
        .diagnose_foot(DiagnoseFootRequest {
            measurement: Some(mref.clone()),
            table: JisTable::Men as i32,
            toe_tolerance_mm: None,
        })
        .await
        .unwrap()
        .into_inner();
    let left = d.left.unwrap();
    let right = d.right.unwrap();
    assert_eq!(left.jis.unwrap().label, "25.0 E");
    assert_eq!(right.jis.unwrap().label, "25.5 EE");
    assert_eq!(left.toe_shape, ToeShape::Greek as i32);
    assert_eq!(left.arch_type, ArchType::High as i32);
    assert_eq!(left.hallux_band, HalluxAngleBand::Mild as i32);
    assert!(left.hallux_note.contains("not a diagnosis"));
    assert_eq!(d.length_difference_mm, -6.0);
    // With a 4 mm tolerance the 3 mm lead of toe 2 counts as level.
    let d = server
        .sizing
        .diagnose_foot(DiagnoseFootRequest {
            measurement: Some(mref.clone()),
            table: JisTable::Men as i32,
            toe_tolerance_mm: Some(4.0),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.left.unwrap().toe_shape, ToeShape::Square as i32);
    let err = server
        .sizing
        .diagnose_foot(DiagnoseFootRequest {
            measurement: Some(mref.clone()),
            table: 0,
            toe_tolerance_mm: None,
        })
        .await
        .unwrap_err();
    common::assert_status(&err, Code::InvalidArgument, "table:");

    // Recommend from the demo catalog: the right foot (256 mm) decides. Runner 3 sizes have
    // 14.5 mm over the size; 25.5 leaves 13.5 mm, inside the running allowance of 12-17 mm.
    let r = server
        .sizing
        .recommend_size(RecommendSizeRequest {
            measurement: Some(mref.clone()),
            shoe_id: "kaze-runner-3-m".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.foot, "right");
    let best = r.best.unwrap();
    assert_eq!(best.size.unwrap().size_mm, 255);
    let length = best.length.unwrap();
    assert_eq!(length.fit, Fit::Good as i32);
    assert_eq!(length.margin_mm, 13.5);
    assert_eq!((length.good_min_mm, length.good_max_mm), (12.0, 17.0));
    assert_eq!(best.ball_girth.unwrap().fit, Fit::Good as i32);
    assert_eq!(r.confidence, 1.0);
    assert_eq!(r.alternatives.len(), 2);
    assert!(
        r.reasons
            .iter()
            .any(|s| s.contains("toe allowance +13.5 mm is good"))
    );

    let many = server
        .sizing
        .recommend_sizes(RecommendSizesRequest {
            measurement: Some(mref.clone()),
            shoe_ids: vec!["tsubaki-oxford".into(), "michi-walker-3e".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = many
        .recommendations
        .iter()
        .map(|r| r.shoe_id.as_str())
        .collect();
    assert_eq!(ids, ["tsubaki-oxford", "michi-walker-3e"]);
    let err = server
        .sizing
        .recommend_sizes(RecommendSizesRequest {
            measurement: Some(mref.clone()),
            shoe_ids: vec!["tsubaki-oxford".into(), "no-such-shoe".into()],
        })
        .await
        .unwrap_err();
    common::assert_status(&err, Code::NotFound, "shoe_ids[1]:");

    // Delete: the scan goes with the measurement; deleting again is fine.
    let del = server
        .measurements
        .delete_measurement(DeleteMeasurementRequest {
            user_id: user.clone(),
            measurement_id: older.measurement_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(del.deleted);
    assert!(!objects.exists(&key1).await.unwrap());
    assert!(objects.exists(&key2).await.unwrap(), "the other scan stays");
    let again = server
        .measurements
        .delete_measurement(DeleteMeasurementRequest {
            user_id: user.clone(),
            measurement_id: older.measurement_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.deleted);
    let err = server
        .measurements
        .get_measurement(GetMeasurementRequest {
            user_id: user.clone(),
            measurement_id: older.measurement_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A delete that stopped after removing the scan (here: removed behind ashi's back) is
    // finished by the next one.
    objects.delete(&key2).await.unwrap();
    let del = server
        .measurements
        .delete_measurement(DeleteMeasurementRequest {
            user_id: user.clone(),
            measurement_id: newer.measurement_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(del.deleted);
    let left = server
        .measurements
        .list_measurements(ListMeasurementsRequest {
            user_id: user.clone(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(left.measurements.is_empty());

    server.stop().await;
}

#[tokio::test]
async fn flow_on_sqlite_and_local_store() {
    whole_flow(Backend::SqliteLocal).await;
}

#[tokio::test]
async fn flow_on_postgres_and_s3() {
    if let Some(ext) = common::external() {
        whole_flow(Backend::PostgresS3(ext)).await;
    }
}

/// Upload URLs refuse a different file, a different type, a changed signature and, once
/// expired, everything.
async fn tampered_and_expired_urls_are_refused(backend: Backend) {
    let (mut config, dir) = common::config(&backend);
    config.upload_expiry = Duration::from_secs(1);
    let mut server = common::start(config, dir).await;
    let objects = common::objects(&server.config);
    let user = common::unique("user");
    let body = vec![7u8; 1000];
    let up = server
        .measurements
        .create_upload(CreateUploadRequest {
            user_id: user.clone(),
            content_type: "model/ply".into(),
            content_length: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    let url = up.upload_url.clone();
    let ok = [("content-type", "model/ply"), ("content-length", "1000")];

    let bigger = vec![7u8; 1001];
    let (status, _) = common::http(
        "PUT",
        &url,
        &[("content-type", "model/ply"), ("content-length", "1001")],
        &bigger,
    )
    .await;
    assert_eq!(status, 403, "a larger file must be refused");
    let (status, _) = common::http(
        "PUT",
        &url,
        &[("content-type", "image/png"), ("content-length", "1000")],
        &body,
    )
    .await;
    assert_eq!(status, 403, "another content type must be refused");
    let last = url.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &url[..url.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let (status, _) = common::http("PUT", &flipped, &ok, &body).await;
    assert_eq!(status, 403, "a changed signature must be refused");
    assert!(!objects.exists(&up.object_key).await.unwrap());

    // Let the URL expire (its lifetime is one second).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = common::http("PUT", &url, &ok, &body).await;
    assert_eq!(status, 403, "an expired URL must be refused");
    assert!(!objects.exists(&up.object_key).await.unwrap());

    // Sizes above the maximum get no URL at all.
    let err = server
        .measurements
        .create_upload(CreateUploadRequest {
            user_id: user,
            content_type: "model/ply".into(),
            content_length: ashi::config::DEFAULT_MAX_UPLOAD_BYTES + 1,
        })
        .await
        .unwrap_err();
    common::assert_status(&err, Code::InvalidArgument, "content_length:");
    server.stop().await;
}

#[tokio::test]
async fn urls_on_the_local_store_refuse_tampering_and_expire() {
    tampered_and_expired_urls_are_refused(Backend::SqliteLocal).await;
}

#[tokio::test]
async fn urls_on_s3_refuse_tampering_and_expire() {
    if let Some(ext) = common::external() {
        tampered_and_expired_urls_are_refused(Backend::PostgresS3(ext)).await;
    }
}
