//! The catalog over gRPC, health and reflection: what a partner and an operator see.

mod common;

use ashi::pb::*;
use common::Backend;
use tonic::Code;

async fn catalog(backend: Backend) {
    let (config, dir) = common::config(&backend);
    let mut server = common::start(config, dir).await;
    let id = common::unique("shoe");
    let size = |size_mm: u32| ShoeSize {
        size_mm,
        inner_length_mm: f64::from(size_mm) + 12.0,
        inner_ball_girth_mm: 243.0,
        inner_width_mm: 0.0,
        label_eu: String::new(),
        label_uk: String::new(),
        label_us: String::new(),
    };
    let shoe = Shoe {
        shoe_id: id.clone(),
        brand: "Test".into(),
        model: "One".into(),
        category: ShoeCategory::Walking as i32,
        gender: Gender::Unisex as i32,
        unit_system: UnitSystem::JisMm as i32,
        sizes: vec![size(255), size(250)],
    };
    let stored = server
        .catalog
        .upsert_shoe(UpsertShoeRequest {
            shoe: Some(shoe.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.sizes[0].size_mm, 250, "sizes come back in order");
    let got = server
        .catalog
        .get_shoe(GetShoeRequest {
            shoe_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, stored);

    // Replacing drops sizes that are no longer listed.
    let replaced = server
        .catalog
        .upsert_shoe(UpsertShoeRequest {
            shoe: Some(Shoe {
                sizes: vec![size(260)],
                ..shoe.clone()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let got = server
        .catalog
        .get_shoe(GetShoeRequest {
            shoe_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, replaced);
    assert_eq!(got.sizes.len(), 1);

    // Errors name the field.
    let err = server
        .catalog
        .upsert_shoe(UpsertShoeRequest {
            shoe: Some(Shoe {
                category: 0,
                ..shoe.clone()
            }),
        })
        .await
        .unwrap_err();
    common::assert_status(&err, Code::InvalidArgument, "shoe.category: is required");
    let mut bad = size(250);
    bad.inner_ball_girth_mm = 20.0;
    let err = server
        .catalog
        .upsert_shoe(UpsertShoeRequest {
            shoe: Some(Shoe {
                sizes: vec![size(245), bad],
                ..shoe.clone()
            }),
        })
        .await
        .unwrap_err();
    common::assert_status(
        &err,
        Code::InvalidArgument,
        "shoe.sizes[1].inner_ball_girth_mm:",
    );

    // CSV import: a bad row names its line and imports nothing.
    let csv_id = common::unique("csv");
    let csv = format!(
        "{}\n{csv_id},B,M,casual,men,us,250,262,243,,40,6,7\n{csv_id},B,M,casual,men,us,255,267,x,,41,7,8\n",
        ashi::catalog_csv::HEADER.join(",")
    );
    let err = server
        .catalog
        .import_shoes_csv(ImportShoesCsvRequest { csv: csv.clone() })
        .await
        .unwrap_err();
    common::assert_status(&err, Code::InvalidArgument, "csv: line 3:");
    let err = server
        .catalog
        .get_shoe(GetShoeRequest {
            shoe_id: csv_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let imported = server
        .catalog
        .import_shoes_csv(ImportShoesCsvRequest {
            csv: csv.replace(",x,", ",246,"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((imported.shoes, imported.sizes), (1, 2));

    // Listing pages through the whole catalog, demo shoes included.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = server
            .catalog
            .list_shoes(ListShoesRequest {
                page_size: 4,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.shoes.len() <= 4);
        seen.extend(page.shoes.into_iter().map(|s| s.shoe_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    for want in [id.as_str(), csv_id.as_str(), "kaze-runner-3-m", "hana-pump"] {
        assert!(seen.iter().any(|s| s == want), "{want} not listed");
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    server.stop().await;
}

#[tokio::test]
async fn catalog_on_sqlite() {
    catalog(Backend::SqliteLocal).await;
}

#[tokio::test]
async fn catalog_on_postgres() {
    if let Some(ext) = common::external() {
        catalog(Backend::PostgresS3(ext)).await;
    }
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let (config, dir) = common::config(&Backend::SqliteLocal);
    let server = common::start(config, dir).await;
    let mut health = HealthClient::new(server.channel.clone());
    for service in [
        "ashi.v1.MeasurementService",
        "ashi.v1.SizingService",
        "ashi.v1.CatalogService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }

    let mut reflection = ServerReflectionClient::new(server.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "ashi.v1.MeasurementService",
        "ashi.v1.SizingService",
        "ashi.v1.CatalogService",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    server.stop().await;
}

/// The descriptor set keeps the HTTP rules that REST transcoding needs.
#[test]
fn descriptor_set_keeps_http_rules() {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(ashi::FILE_DESCRIPTOR_SET).unwrap();
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    for want in [
        "ashi/v1/measurement.proto",
        "ashi/v1/sizing.proto",
        "ashi/v1/catalog.proto",
        "google/api/annotations.proto",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // prost's types keep unknown extensions only as raw bytes; the path must still be there.
    let raw = String::from_utf8_lossy(ashi::FILE_DESCRIPTOR_SET);
    for path in [
        "/v1/users/{user_id}/measurements",
        "/v1/sizing:recommend",
        "/v1/shoes/{shoe_id}",
    ] {
        assert!(raw.contains(path), "{path} missing from the descriptor set");
    }
}

#[tokio::test]
async fn health_turns_not_serving_when_shutdown_begins() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let (config, dir) = common::config(&Backend::SqliteLocal);
    let mut server = common::start(config, dir).await;
    let mut health = HealthClient::new(server.channel.clone());
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "ashi.v1.SizingService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    server.begin_stop();
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // The server finishes once its last stream is gone.
    drop(watch);
    drop(health);
    server.stop().await;
}
