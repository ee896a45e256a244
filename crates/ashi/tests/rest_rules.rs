//! The HTTP rules of `ashi::FILE_DESCRIPTOR_SET` load into the gateway's transcoder and map the
//! REST calls a partner would make to the right gRPC methods.

use grpc_transcode::{Options, Transcoder};
use http::Method;

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
