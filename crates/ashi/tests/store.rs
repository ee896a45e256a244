//! Storage guarantees checked on the database itself, on SQLite and on PostgreSQL.

mod common;

use ashi::foot::{Feet, Foot};
use ashi::store::{Error, NewMeasurement, Store};

fn foot() -> Foot {
    Foot {
        length_mm: 250.0,
        width_mm: 100.0,
        ball_girth_mm: 243.0,
        instep_height_mm: 65.0,
        heel_width_mm: 65.0,
        arch_height_mm: None,
        ball_of_foot_length_mm: Some(185.0),
        toe_tip_offsets_mm: [0.0, 4.0, 9.0, 15.0, 24.0],
        toe1_angle_deg: 12.0,
        toe5_angle_deg: 8.0,
    }
}

fn measurement(user: &str, keys: &[&str]) -> NewMeasurement {
    NewMeasurement {
        measurement_id: common::unique("m"),
        user_id: user.into(),
        feet: Feet {
            left: foot(),
            right: foot(),
        },
        scan_object_keys: keys.iter().map(|k| k.to_string()).collect(),
        device: "test".into(),
        measured_at_ms: 1_700_000_000_000,
        created_at_ms: 1_700_000_000_000,
    }
}

/// The measurement and foot rows are written before the scan rows; when a scan row fails,
/// none of them may remain.
async fn failed_insert_leaves_no_rows(store: Store) {
    let user = common::unique("user");
    let shared_key = format!("scans/{user}/a.ply");
    let first = measurement(&user, &[&shared_key]);
    store.insert_measurement(&first).await.unwrap();
    assert_eq!(
        store
            .rows_for_measurement(&first.measurement_id)
            .await
            .unwrap(),
        4
    );

    let own_key = format!("scans/{user}/b.ply");
    let second = measurement(&user, &[&own_key, &shared_key]);
    let err = store.insert_measurement(&second).await.unwrap_err();
    assert!(
        matches!(err, Error::ScanTaken { ref key } if *key == shared_key),
        "{err}"
    );
    assert_eq!(
        store
            .rows_for_measurement(&second.measurement_id)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .get_measurement(&user, &second.measurement_id)
            .await
            .unwrap()
            .is_none()
    );

    // The stored one reads back exactly, and deleting removes all its rows.
    let got = store
        .get_measurement(&user, &first.measurement_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.feet, first.feet);
    assert_eq!(got.scan_object_keys, first.scan_object_keys);
    assert!(
        store
            .delete_measurement(&user, &first.measurement_id)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .rows_for_measurement(&first.measurement_id)
            .await
            .unwrap(),
        0
    );
    assert!(
        !store
            .delete_measurement(&user, &first.measurement_id)
            .await
            .unwrap()
    );
    // The key is free again once its measurement is gone.
    store
        .insert_measurement(&measurement(&user, &[&shared_key]))
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_failed_insert_leaves_no_rows() {
    let dir = std::env::temp_dir().join(common::unique("ashi-store"));
    let url = format!("sqlite://{}?mode=rwc", dir.join("ashi.db").display());
    failed_insert_leaves_no_rows(Store::open(&url).await.unwrap()).await;
    // Opening again finds the schema migrated and the data in place.
    let store = Store::open(&url).await.unwrap();
    assert!(store.list_shoes(10, "").await.unwrap().items.is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn postgres_failed_insert_leaves_no_rows() {
    if let Some(ext) = common::external() {
        failed_insert_leaves_no_rows(Store::open(&ext.database_url).await.unwrap()).await;
    }
}
