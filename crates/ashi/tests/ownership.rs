//! Every call names its caller, and a caller reaches only what it may. The gateway forwards
//! the subject of a verified token as `x-user-id` (a user, who reaches only their own data) or
//! names a service principal in `x-ashi-service` (which reaches every user's data); a call
//! with neither, with both, or with a malformed one is UNAUTHENTICATED. Health and reflection
//! stay open to probes. Real server, real tonic clients over real sockets.

mod common;

use ashi::pb::catalog_service_client::CatalogServiceClient;
use ashi::pb::measurement_service_client::MeasurementServiceClient;
use ashi::pb::sizing_service_client::SizingServiceClient;
use ashi::pb::*;
use common::{Backend, Running};
use tonic::transport::Channel;
use tonic::{Code, Request};

/// `message` with the given metadata, on a client that adds none of its own.
fn with_headers<T>(headers: &[(&'static str, &str)], message: T) -> Request<T> {
    let mut request = Request::new(message);
    for (name, value) in headers {
        request
            .metadata_mut()
            .append(*name, value.parse().expect("a header value"));
    }
    request
}

/// `message` as sent by the signed-in user `caller` (through the gateway).
fn signed_in<T>(caller: &str, message: T) -> Request<T> {
    with_headers(&[("x-user-id", caller)], message)
}

/// Clients that send only what each request carries.
struct Plain {
    measurements: MeasurementServiceClient<Channel>,
    sizing: SizingServiceClient<Channel>,
    catalog: CatalogServiceClient<Channel>,
}

fn plain(server: &Running) -> Plain {
    Plain {
        measurements: MeasurementServiceClient::new(server.channel.clone()),
        sizing: SizingServiceClient::new(server.channel.clone()),
        catalog: CatalogServiceClient::new(server.channel.clone()),
    }
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

/// Uploads a scan for `user` as `caller` (the headers of each call) and PUTs it.
async fn upload_scan(plain: &mut Plain, caller: &[(&'static str, &str)], user: &str) -> String {
    let upload = plain
        .measurements
        .create_upload(with_headers(
            caller,
            CreateUploadRequest {
                user_id: user.to_owned(),
                content_type: "model/ply".into(),
                content_length: 64,
            },
        ))
        .await
        .expect("the upload is allowed")
        .into_inner();
    let headers: Vec<(&str, &str)> = upload
        .required_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, text) = common::http("PUT", &upload.upload_url, &headers, &[b'p'; 64]).await;
    assert_eq!(status, 200, "{text}");
    upload.object_key
}

fn register(user: &str, scan: String) -> RegisterMeasurementRequest {
    RegisterMeasurementRequest {
        user_id: user.to_owned(),
        left: Some(foot(250.0)),
        right: Some(foot(252.0)),
        scan_object_keys: vec![scan],
        device: "test".into(),
        measured_at: None,
    }
}

/// A measurement of `user`, registered by the test service.
async fn seed(server: &mut Running, user: &str) -> Measurement {
    let mut plain = plain(server);
    let scan = upload_scan(&mut plain, &[("x-ashi-service", "test")], user).await;
    server
        .measurements
        .register_measurement(register(user, scan))
        .await
        .expect("the service may register for any user")
        .into_inner()
}

/// Asserts that `result` failed with `code` (and so returned no data).
fn refused<T>(result: Result<tonic::Response<T>, tonic::Status>, code: Code, what: &str) {
    match result {
        Ok(_) => panic!("{what} was allowed"),
        Err(err) => assert_eq!(err.code(), code, "{what}: {}", err.message()),
    }
}

fn denied<T>(result: Result<tonic::Response<T>, tonic::Status>, what: &str) {
    refused(result, Code::PermissionDenied, what);
}

/// The measurement still exists, seen by the test service.
async fn still_there(server: &mut Running, m: &Measurement) {
    let got = server
        .measurements
        .get_measurement(GetMeasurementRequest {
            user_id: m.user_id.clone(),
            measurement_id: m.measurement_id.clone(),
        })
        .await
        .expect("the service reads every user's measurements")
        .into_inner();
    assert_eq!(&got, m);
}

/// Calls every RPC of the three services with `headers`, each a request that a service could
/// make successfully (the data exists), and asserts each is refused with `code`.
async fn every_rpc_refused(
    plain: &mut Plain,
    headers: &[(&'static str, &str)],
    m: &Measurement,
    scan: &str,
    code: Code,
) {
    let user = m.user_id.clone();
    let id = m.measurement_id.clone();
    let reference = MeasurementRef {
        user_id: user.clone(),
        measurement_id: id.clone(),
    };
    let shoe = "kaze-runner-3-m".to_owned();
    let calls = &mut plain.measurements;
    refused(
        calls
            .create_upload(with_headers(
                headers,
                CreateUploadRequest {
                    user_id: user.clone(),
                    content_type: "model/ply".into(),
                    content_length: 64,
                },
            ))
            .await,
        code,
        "CreateUpload",
    );
    refused(
        calls
            .register_measurement(with_headers(headers, register(&user, scan.to_owned())))
            .await,
        code,
        "RegisterMeasurement",
    );
    refused(
        calls
            .get_measurement(with_headers(
                headers,
                GetMeasurementRequest {
                    user_id: user.clone(),
                    measurement_id: id.clone(),
                },
            ))
            .await,
        code,
        "GetMeasurement",
    );
    refused(
        calls
            .list_measurements(with_headers(
                headers,
                ListMeasurementsRequest {
                    user_id: user.clone(),
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await,
        code,
        "ListMeasurements",
    );
    refused(
        calls
            .delete_measurement(with_headers(
                headers,
                DeleteMeasurementRequest {
                    user_id: user.clone(),
                    measurement_id: id.clone(),
                },
            ))
            .await,
        code,
        "DeleteMeasurement",
    );
    let sizing = &mut plain.sizing;
    refused(
        sizing
            .diagnose_foot(with_headers(
                headers,
                DiagnoseFootRequest {
                    measurement: Some(reference.clone()),
                    table: JisTable::Men.into(),
                    toe_tolerance_mm: None,
                },
            ))
            .await,
        code,
        "DiagnoseFoot",
    );
    refused(
        sizing
            .recommend_size(with_headers(
                headers,
                RecommendSizeRequest {
                    measurement: Some(reference.clone()),
                    shoe_id: shoe.clone(),
                },
            ))
            .await,
        code,
        "RecommendSize",
    );
    refused(
        sizing
            .recommend_sizes(with_headers(
                headers,
                RecommendSizesRequest {
                    measurement: Some(reference.clone()),
                    shoe_ids: vec![shoe.clone()],
                },
            ))
            .await,
        code,
        "RecommendSizes",
    );
    let catalog = &mut plain.catalog;
    refused(
        catalog
            .get_shoe(with_headers(
                headers,
                GetShoeRequest {
                    shoe_id: shoe.clone(),
                },
            ))
            .await,
        code,
        "GetShoe",
    );
    refused(
        catalog
            .list_shoes(with_headers(
                headers,
                ListShoesRequest {
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await,
        code,
        "ListShoes",
    );
    refused(
        catalog
            .upsert_shoe(with_headers(
                headers,
                UpsertShoeRequest {
                    shoe: Some(Shoe {
                        shoe_id: "refused-shoe".into(),
                        brand: "B".into(),
                        model: "M".into(),
                        category: ShoeCategory::Walking.into(),
                        gender: Gender::Unisex.into(),
                        unit_system: UnitSystem::JisMm.into(),
                        sizes: vec![ShoeSize {
                            size_mm: 250,
                            inner_length_mm: 262.0,
                            inner_ball_girth_mm: 243.0,
                            ..Default::default()
                        }],
                    }),
                },
            ))
            .await,
        code,
        "UpsertShoe",
    );
    refused(
        catalog
            .import_shoes_csv(with_headers(
                headers,
                ImportShoesCsvRequest {
                    csv: format!(
                        "{}\nrefused-csv,B,M,casual,men,us,250,262,243,,40,6,7\n",
                        ashi::catalog_csv::HEADER.join(",")
                    ),
                },
            ))
            .await,
        code,
        "ImportShoesCsv",
    );
}

#[tokio::test]
async fn signed_in_users_reach_only_their_own_measurements() {
    let (config, dir) = common::config(&Backend::SqliteLocal);
    let mut server = common::start(config, dir).await;
    let mut plain = plain(&server);
    let owner = common::unique("owner");
    let other = common::unique("other");

    // The owner uploads a scan and registers a measurement; the other user has one too.
    let scan = upload_scan(&mut plain, &[("x-user-id", &owner)], &owner).await;
    let m = plain
        .measurements
        .register_measurement(signed_in(&owner, register(&owner, scan)))
        .await
        .expect("the owner may register")
        .into_inner();
    let others = seed(&mut server, &other).await;
    let get = |caller: &str, user: &str| {
        signed_in(
            caller,
            GetMeasurementRequest {
                user_id: user.to_owned(),
                measurement_id: m.measurement_id.clone(),
            },
        )
    };
    let reference = MeasurementRef {
        user_id: owner.clone(),
        measurement_id: m.measurement_id.clone(),
    };
    let recommend = |caller: &str, reference: &MeasurementRef| {
        signed_in(
            caller,
            RecommendSizeRequest {
                measurement: Some(reference.clone()),
                shoe_id: "kaze-runner-3-m".into(),
            },
        )
    };

    // The owner reads it, lists it and gets a size for it.
    let got = plain
        .measurements
        .get_measurement(get(&owner, &owner))
        .await;
    assert_eq!(got.expect("the owner may read").into_inner(), m);
    let listed = plain
        .measurements
        .list_measurements(signed_in(
            &owner,
            ListMeasurementsRequest {
                user_id: owner.clone(),
                page_size: 0,
                page_token: String::new(),
            },
        ))
        .await
        .expect("the owner may list")
        .into_inner();
    assert_eq!(listed.measurements, std::slice::from_ref(&m));
    plain
        .sizing
        .recommend_size(recommend(&owner, &reference))
        .await
        .expect("the owner may ask for a size");

    // Another signed-in user can neither read, list, delete, size, diagnose nor upload or
    // register for the owner.
    denied(
        plain
            .measurements
            .get_measurement(get(&other, &owner))
            .await,
        "reading another's measurement",
    );
    denied(
        plain
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
        plain
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
        plain
            .sizing
            .recommend_size(recommend(&other, &reference))
            .await,
        "sizing another's measurement",
    );
    denied(
        plain
            .sizing
            .recommend_sizes(signed_in(
                &other,
                RecommendSizesRequest {
                    measurement: Some(reference.clone()),
                    shoe_ids: vec!["kaze-runner-3-m".into()],
                },
            ))
            .await,
        "sizing another's measurement for many shoes",
    );
    denied(
        plain
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
        plain
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
    let owners_scan = upload_scan(&mut plain, &[("x-user-id", &owner)], &owner).await;
    denied(
        plain
            .measurements
            .register_measurement(signed_in(&other, register(&owner, owners_scan)))
            .await,
        "registering for another",
    );

    // Naming themselves with the owner's measurement id finds nothing of theirs: the row read
    // must be the caller's own.
    let mine_with_owners_id = MeasurementRef {
        user_id: other.clone(),
        measurement_id: m.measurement_id.clone(),
    };
    refused(
        plain
            .measurements
            .get_measurement(get(&other, &other))
            .await,
        Code::NotFound,
        "reading another's measurement under one's own name",
    );
    refused(
        plain
            .sizing
            .recommend_size(recommend(&other, &mine_with_owners_id))
            .await,
        Code::NotFound,
        "sizing another's measurement under one's own name",
    );
    let deleted = plain
        .measurements
        .delete_measurement(signed_in(
            &other,
            DeleteMeasurementRequest {
                user_id: other.clone(),
                measurement_id: m.measurement_id.clone(),
            },
        ))
        .await
        .expect("deleting a measurement one does not have is a no-op")
        .into_inner();
    assert!(!deleted.deleted);
    // And the owner cannot reach the other user's measurement either way.
    denied(
        plain
            .measurements
            .get_measurement(signed_in(
                &owner,
                GetMeasurementRequest {
                    user_id: other.clone(),
                    measurement_id: others.measurement_id.clone(),
                },
            ))
            .await,
        "reading the other's measurement",
    );

    // The refused calls changed nothing, and a service reads everything.
    still_there(&mut server, &m).await;
    still_there(&mut server, &others).await;
    let objects = common::objects(&server.config);
    for key in &m.scan_object_keys {
        assert!(objects.exists(key).await.unwrap(), "{key} was deleted");
    }
    server.stop().await;
}

#[tokio::test]
async fn calls_without_identity_are_refused_but_probes_are_answered() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let (config, dir) = common::config(&Backend::SqliteLocal);
    let mut server = common::start(config, dir).await;
    let user = common::unique("user");
    let m = seed(&mut server, &user).await;
    let mut plain = plain(&server);
    let scan = upload_scan(&mut plain, &[("x-ashi-service", "test")], &user).await;

    // No identity: every RPC of every service is refused, naming both headers.
    every_rpc_refused(&mut plain, &[], &m, &scan, Code::Unauthenticated).await;
    let err = plain
        .catalog
        .get_shoe(GetShoeRequest {
            shoe_id: "kaze-runner-3-m".into(),
        })
        .await
        .expect_err("refused");
    common::assert_status(&err, Code::Unauthenticated, "no caller identity:");
    assert!(
        err.message().contains("x-user-id") && err.message().contains("x-ashi-service"),
        "{}",
        err.message()
    );
    // Unrelated headers are no identity either.
    every_rpc_refused(
        &mut plain,
        &[("authorization", "Bearer x"), ("x-user", &user)],
        &m,
        &scan,
        Code::Unauthenticated,
    )
    .await;

    // Health answers without an identity, for every service.
    let mut health = HealthClient::new(server.channel.clone());
    for service in [
        "",
        "ashi.v1.MeasurementService",
        "ashi.v1.SizingService",
        "ashi.v1.CatalogService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health needs no identity")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    // Nothing was changed by the refused calls.
    still_there(&mut server, &m).await;
    server.stop().await;
}

#[tokio::test]
async fn ambiguous_or_malformed_identities_are_refused() {
    let (config, dir) = common::config(&Backend::SqliteLocal);
    let mut server = common::start(config, dir).await;
    let user = common::unique("user");
    let m = seed(&mut server, &user).await;
    let mut plain = plain(&server);
    let scan = upload_scan(&mut plain, &[("x-ashi-service", "test")], &user).await;

    // Both a user and a service: even the data owner with a service name is refused.
    every_rpc_refused(
        &mut plain,
        &[("x-user-id", &user), ("x-ashi-service", "test")],
        &m,
        &scan,
        Code::Unauthenticated,
    )
    .await;
    let err = plain
        .measurements
        .get_measurement(with_headers(
            &[("x-user-id", &user), ("x-ashi-service", "test")],
            GetMeasurementRequest {
                user_id: user.clone(),
                measurement_id: m.measurement_id.clone(),
            },
        ))
        .await
        .expect_err("refused");
    common::assert_status(
        &err,
        Code::Unauthenticated,
        "caller identity: both x-user-id and x-ashi-service are set",
    );

    // A header twice, or empty, is never read as one of its values.
    for (headers, message) in [
        (
            vec![("x-user-id", user.as_str()), ("x-user-id", "someone")],
            "caller identity: x-user-id is given more than once",
        ),
        (
            vec![("x-user-id", user.as_str()), ("x-user-id", user.as_str())],
            "caller identity: x-user-id is given more than once",
        ),
        (
            vec![("x-ashi-service", "test"), ("x-ashi-service", "test")],
            "caller identity: x-ashi-service is given more than once",
        ),
        (
            vec![("x-user-id", "")],
            "caller identity: x-user-id is empty",
        ),
    ] {
        let err = plain
            .measurements
            .list_measurements(with_headers(
                &headers,
                ListMeasurementsRequest {
                    user_id: user.clone(),
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await
            .expect_err("refused");
        common::assert_status(&err, Code::Unauthenticated, message);
    }
    server.stop().await;
}

#[tokio::test]
async fn the_anonymous_service_setting_admits_identity_less_calls() {
    let (mut config, dir) = common::config(&Backend::SqliteLocal);
    config.anonymous_service = Some("in-cluster".into());
    let mut server = common::start(config, dir).await;
    let owner = common::unique("owner");
    let m = seed(&mut server, &owner).await;
    let mut plain = plain(&server);

    // No identity: served as the service, which reaches every user's data.
    let got = plain
        .measurements
        .get_measurement(GetMeasurementRequest {
            user_id: owner.clone(),
            measurement_id: m.measurement_id.clone(),
        })
        .await
        .expect("an identity-less call is the anonymous service")
        .into_inner();
    assert_eq!(got, m);
    plain
        .sizing
        .recommend_size(RecommendSizeRequest {
            measurement: Some(MeasurementRef {
                user_id: owner.clone(),
                measurement_id: m.measurement_id.clone(),
            }),
            shoe_id: "kaze-runner-3-m".into(),
        })
        .await
        .expect("the anonymous service may size any measurement");
    plain
        .catalog
        .get_shoe(GetShoeRequest {
            shoe_id: "kaze-runner-3-m".into(),
        })
        .await
        .expect("the anonymous service may read the catalog");

    // A signed-in user is still only themselves, and malformed identities are still refused.
    denied(
        plain
            .measurements
            .get_measurement(signed_in(
                "someone-else",
                GetMeasurementRequest {
                    user_id: owner.clone(),
                    measurement_id: m.measurement_id.clone(),
                },
            ))
            .await,
        "another user, with the anonymous setting on",
    );
    let scan = upload_scan(&mut plain, &[], &owner).await;
    every_rpc_refused(
        &mut plain,
        &[("x-user-id", &owner), ("x-ashi-service", "test")],
        &m,
        &scan,
        Code::Unauthenticated,
    )
    .await;
    refused(
        plain
            .measurements
            .get_measurement(with_headers(
                &[("x-user-id", "")],
                GetMeasurementRequest {
                    user_id: owner.clone(),
                    measurement_id: m.measurement_id.clone(),
                },
            ))
            .await,
        Code::Unauthenticated,
        "an empty x-user-id with the anonymous setting on",
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unusable_anonymous_service_name_stops_the_start() {
    let (mut config, dir) = common::config(&Backend::SqliteLocal);
    config.anonymous_service = Some(" spaced ".into());
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = ashi::serve(config, grpc, http, std::future::pending())
        .await
        .expect_err("the start is refused");
    assert!(
        err.to_string().starts_with("anonymous service name"),
        "{err}"
    );
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}
