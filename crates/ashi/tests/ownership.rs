//! A signed-in user reaches only their own data: the gateway forwards the subject of the
//! caller's verified token as `x-user-id`, and ashi refuses a request that names another
//! user. Requests without the header (partner servers behind the gateway's allow list,
//! services inside the cluster) may name any user. Real server, real tonic client.

mod common;

use ashi::pb::*;
use common::Backend;
use tonic::{Code, Request};

/// `message` as sent by the signed-in user `caller` (through the gateway).
fn signed_in<T>(caller: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-user-id", caller.parse().expect("a header value"));
    request
}

fn foot(length_mm: f64) -> FootDimensions {
    FootDimensions {
        length_mm,
        width_mm: 100.0,
        ball_girth_mm: 245.0,
        instep_height_mm: 66.0,
        heel_width_mm: 66.0,
        arch_height_mm: None,
        ball_of_foot_length_mm: None,
        toe_tip_offsets_mm: vec![3.0, 0.0, 4.0, 11.0, 19.0],
        toe1_angle_deg: 15.0,
        toe5_angle_deg: 10.0,
    }
}

fn denied<T>(result: Result<tonic::Response<T>, tonic::Status>, what: &str) {
    let err = result.err().unwrap_or_else(|| panic!("{what} was allowed"));
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "{what}: {}",
        err.message()
    );
}

#[tokio::test]
async fn signed_in_users_reach_only_their_own_measurements() {
    let (config, dir) = common::config(&Backend::SqliteLocal);
    let mut server = common::start(config, dir).await;
    let owner = common::unique("owner");
    let other = common::unique("other");

    // The owner uploads a scan and registers a measurement.
    let upload = server
        .measurements
        .create_upload(signed_in(
            &owner,
            CreateUploadRequest {
                user_id: owner.clone(),
                content_type: "model/ply".into(),
                content_length: 64,
            },
        ))
        .await
        .expect("the owner may upload")
        .into_inner();
    let headers: Vec<(&str, &str)> = upload
        .required_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, text) = common::http("PUT", &upload.upload_url, &headers, &[b'p'; 64]).await;
    assert_eq!(status, 200, "{text}");
    let m = server
        .measurements
        .register_measurement(signed_in(
            &owner,
            RegisterMeasurementRequest {
                user_id: owner.clone(),
                left: Some(foot(250.0)),
                right: Some(foot(252.0)),
                scan_object_keys: vec![upload.object_key],
                device: "test".into(),
                measured_at: None,
            },
        ))
        .await
        .expect("the owner may register")
        .into_inner();
    let get = |caller: &str| {
        signed_in(
            caller,
            GetMeasurementRequest {
                user_id: owner.clone(),
                measurement_id: m.measurement_id.clone(),
            },
        )
    };
    let reference = MeasurementRef {
        user_id: owner.clone(),
        measurement_id: m.measurement_id.clone(),
    };
    let recommend = |caller: &str| {
        signed_in(
            caller,
            RecommendSizeRequest {
                measurement: Some(reference.clone()),
                shoe_id: "kaze-runner-3-m".into(),
            },
        )
    };

    // The owner reads it and gets a size for it.
    let got = server.measurements.get_measurement(get(&owner)).await;
    assert_eq!(got.expect("the owner may read").into_inner().user_id, owner);
    server
        .sizing
        .recommend_size(recommend(&owner))
        .await
        .expect("the owner may ask for a size");

    // Another signed-in user can neither read, list, delete, size nor upload for the owner.
    denied(
        server.measurements.get_measurement(get(&other)).await,
        "reading another's measurement",
    );
    denied(
        server
            .measurements
            .list_measurements(signed_in(
                &other,
                ListMeasurementsRequest {
                    user_id: owner.clone(),
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await,
        "listing another's measurements",
    );
    denied(
        server
            .measurements
            .delete_measurement(signed_in(
                &other,
                DeleteMeasurementRequest {
                    user_id: owner.clone(),
                    measurement_id: m.measurement_id.clone(),
                },
            ))
            .await,
        "deleting another's measurement",
    );
    denied(
        server.sizing.recommend_size(recommend(&other)).await,
        "sizing another's measurement",
    );
    denied(
        server
            .sizing
            .diagnose_foot(signed_in(
                &other,
                DiagnoseFootRequest {
                    measurement: Some(reference.clone()),
                    table: JisTable::Men.into(),
                    toe_tolerance_mm: None,
                },
            ))
            .await,
        "diagnosing another's feet",
    );
    denied(
        server
            .measurements
            .create_upload(signed_in(
                &other,
                CreateUploadRequest {
                    user_id: owner.clone(),
                    content_type: "model/ply".into(),
                    content_length: 64,
                },
            ))
            .await,
        "uploading for another",
    );

    // The refused delete deleted nothing; a trusted caller (no header) reads the measurement.
    let trusted = server
        .measurements
        .get_measurement(GetMeasurementRequest {
            user_id: owner.clone(),
            measurement_id: m.measurement_id.clone(),
        })
        .await
        .expect("a caller without a signed-in user may read any measurement");
    assert_eq!(trusted.into_inner().measurement_id, m.measurement_id);
    server.stop().await;
}
