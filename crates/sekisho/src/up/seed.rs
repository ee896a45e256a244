//! Demo data: the demo account gets one measurement on first run (a man's feet of average
//! size, slightly different left and right), so the page has something to show.

use std::net::SocketAddr;

use ashi::pb::catalog_service_client::CatalogServiceClient;
use ashi::pb::measurement_service_client::MeasurementServiceClient;
use ashi::pb::{
    CreateUploadRequest, FootDimensions, ListMeasurementsRequest, ListShoesRequest,
    RegisterMeasurementRequest,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::Error;

/// What the banner's example calls use.
pub struct Seeded {
    pub measurement_id: String,
    pub shoe_id: String,
}

/// Registers the demo measurement unless the user has one; returns the latest one and a
/// shoe of the catalog to try.
pub async fn demo_data(
    ashi: SocketAddr,
    ashi_objects: SocketAddr,
    user: &str,
) -> Result<Seeded, Error> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{ashi}"))
        .map_err(|e| Error::Ashi(e.to_string()))?
        .connect()
        .await
        .map_err(|e| Error::Ashi(format!("cannot reach ashi at {ashi}: {e}")))?;
    let mut measurements = MeasurementServiceClient::new(channel.clone());
    let listed = measurements
        .list_measurements(as_user(
            user,
            ListMeasurementsRequest {
                user_id: user.to_owned(),
                page_size: 1,
                page_token: String::new(),
            },
        )?)
        .await
        .map_err(|e| Error::Ashi(e.message().to_owned()))?
        .into_inner();
    let measurement_id = match listed.measurements.first() {
        Some(latest) => latest.measurement_id.clone(),
        None => {
            let scan = upload_scan(&mut measurements, ashi_objects, user).await?;
            measurements
                .register_measurement(as_user(
                    user,
                    RegisterMeasurementRequest {
                        user_id: user.to_owned(),
                        left: Some(foot(262.0, 250.0, 101.0, 22.0)),
                        right: Some(foot(265.0, 252.0, 102.0, 14.0)),
                        scan_object_keys: vec![scan],
                        device: "demo".to_owned(),
                        measured_at: None,
                    },
                )?)
                .await
                .map_err(|e| Error::Ashi(e.message().to_owned()))?
                .into_inner()
                .measurement_id
        }
    };
    let shoes = CatalogServiceClient::new(channel)
        .list_shoes(as_user(
            user,
            ListShoesRequest {
                page_size: 100,
                page_token: String::new(),
            },
        )?)
        .await
        .map_err(|e| Error::Ashi(e.message().to_owned()))?
        .into_inner()
        .shoes;
    // The demo feet are a man's: suggest a shoe made for them.
    let for_men = |shoe: &&ashi::pb::Shoe| {
        [
            ashi::pb::Gender::Men as i32,
            ashi::pb::Gender::Unisex as i32,
        ]
        .contains(&shoe.gender)
    };
    let shoe_id = shoes
        .iter()
        .find(for_men)
        .or(shoes.first())
        .map(|shoe| shoe.shoe_id.clone())
        .ok_or_else(|| Error::Ashi("the demo catalog is empty".into()))?;
    Ok(Seeded {
        measurement_id,
        shoe_id,
    })
}

/// A call made as the demo user: ashi serves no call without a caller identity, and the
/// seeder, beside ashi rather than behind the gateway, names the user it acts for.
fn as_user<T>(user: &str, message: T) -> Result<tonic::Request<T>, Error> {
    let mut request = tonic::Request::new(message);
    let value = user
        .parse()
        .map_err(|_| Error::Ashi(format!("user id {user:?} is not a header value")))?;
    request
        .metadata_mut()
        .insert(ashi::service::USER_HEADER, value);
    Ok(request)
}

/// A stand-in scan: an ASCII PLY point cloud of a few points.
const DEMO_SCAN: &str = "ply\nformat ascii 1.0\ncomment sekisho demo scan\nelement vertex 4\n\
property float x\nproperty float y\nproperty float z\nend_header\n\
0 0 0\n262 0 0\n190 101 0\n0 66 0\n";

/// Asks ashi for an upload URL and PUTs the demo scan to it, straight to ashi's object
/// listener (the URL names the gateway, which is not needed for this); returns the key.
async fn upload_scan(
    measurements: &mut MeasurementServiceClient<tonic::transport::Channel>,
    ashi_objects: SocketAddr,
    user: &str,
) -> Result<String, Error> {
    let upload = measurements
        .create_upload(as_user(
            user,
            CreateUploadRequest {
                user_id: user.to_owned(),
                content_type: "model/ply".to_owned(),
                content_length: DEMO_SCAN.len() as u64,
            },
        )?)
        .await
        .map_err(|e| Error::Ashi(e.message().to_owned()))?
        .into_inner();
    let url: http::Uri = upload
        .upload_url
        .parse()
        .map_err(|e| Error::Ashi(format!("upload URL {}: {e}", upload.upload_url)))?;
    let target = url.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = http::Request::builder()
        .method(upload.method.as_str())
        .uri(target)
        .header(http::header::HOST, ashi_objects.to_string())
        .header(http::header::CONTENT_LENGTH, DEMO_SCAN.len());
    for (name, value) in &upload.required_headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from_static(DEMO_SCAN.as_bytes())))
        .map_err(|e| Error::Ashi(format!("upload request: {e}")))?;
    let stream = tokio::net::TcpStream::connect(ashi_objects)
        .await
        .map_err(|e| Error::Ashi(format!("cannot reach ashi at {ashi_objects}: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Error::Ashi(format!("upload: {e}")))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Error::Ashi(format!("upload: {e}")))?;
    if !response.status().is_success() {
        return Err(Error::Ashi(format!(
            "the demo scan upload was refused: {}",
            response.status()
        )));
    }
    Ok(upload.object_key)
}

/// One foot; the dimensions not given are in proportion to the length.
fn foot(length_mm: f64, ball_girth_mm: f64, width_mm: f64, hallux_deg: f64) -> FootDimensions {
    FootDimensions {
        length_mm,
        width_mm,
        ball_girth_mm,
        instep_height_mm: 0.26 * length_mm,
        heel_width_mm: 0.26 * length_mm,
        arch_height_mm: Some(0.27 * length_mm),
        ball_of_foot_length_mm: Some(0.73 * length_mm),
        toe_tip_offsets_mm: vec![0.0, 3.0, 9.0, 15.0, 24.0],
        toe1_angle_deg: hallux_deg,
        toe5_angle_deg: 10.0,
    }
}
