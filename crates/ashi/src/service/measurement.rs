//! `ashi.v1.MeasurementService`: uploads, and measurements stored per user.

use super::convert::{ms_from_timestamp, now_ms, timestamp, timestamp_from_ms};
use super::{Caller, Shared, objects_status, page_size, store_status};
use crate::pb::measurement_service_server::MeasurementService;
use crate::pb::*;
use crate::store::{NewMeasurement, StoredMeasurement};
use crate::validate::{self, FieldError};
use rand::RngCore;
use tonic::{Request, Response, Status};

/// Content types a scan may have, with the file extension its key gets.
pub const SCAN_CONTENT_TYPES: [(&str, &str); 6] = [
    ("model/ply", "ply"),
    ("model/obj", "obj"),
    ("model/gltf-binary", "glb"),
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("application/octet-stream", "bin"),
];

/// Most scans one measurement may name.
pub const MAX_SCANS: usize = 10;

/// The service.
pub struct Measurements(pub Shared);

/// Object keys of a user's scans start with this, so a measurement can only name the user's
/// own uploads.
pub fn scan_prefix(user_id: &str) -> String {
    format!("scans/{user_id}/")
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn measurement_to_pb(m: &StoredMeasurement) -> Measurement {
    Measurement {
        measurement_id: m.measurement_id.clone(),
        user_id: m.user_id.clone(),
        left: Some(validate::to_pb(&m.feet.left)),
        right: Some(validate::to_pb(&m.feet.right)),
        scan_object_keys: m.scan_object_keys.clone(),
        device: m.device.clone(),
        measured_at: Some(timestamp_from_ms(m.measured_at_ms)),
        created_at: Some(timestamp_from_ms(m.created_at_ms)),
    }
}

#[tonic::async_trait]
impl MeasurementService for Measurements {
    async fn create_upload(
        &self,
        request: Request<CreateUploadRequest>,
    ) -> Result<Response<CreateUploadResponse>, Status> {
        let (caller, req) = Caller::from_request(request)?;
        let user_id = validate::id("user_id", &req.user_id)?;
        caller.may_reach(user_id)?;
        let Some(&(content_type, ext)) = SCAN_CONTENT_TYPES
            .iter()
            .find(|(ct, _)| ct.eq_ignore_ascii_case(req.content_type.trim()))
        else {
            let allowed: Vec<&str> = SCAN_CONTENT_TYPES.iter().map(|(ct, _)| *ct).collect();
            return Err(FieldError::new(
                "content_type",
                format!(
                    "{:?} is not one of {}",
                    req.content_type,
                    allowed.join(", ")
                ),
            )
            .into());
        };
        if req.content_length == 0 || req.content_length > self.0.max_upload_bytes {
            return Err(FieldError::new(
                "content_length",
                format!(
                    "{} must be 1-{} bytes",
                    req.content_length, self.0.max_upload_bytes
                ),
            )
            .into());
        }
        let object_key = format!("{}{}.{ext}", scan_prefix(user_id), random_id());
        let signed = self.0.objects.presign_put(
            &object_key,
            content_type,
            req.content_length,
            self.0.upload_expiry,
        );
        Ok(Response::new(CreateUploadResponse {
            object_key,
            upload_url: signed.url,
            method: "PUT".into(),
            required_headers: signed.headers.into_iter().collect(),
            expires_at: Some(timestamp(signed.expires_at)),
        }))
    }

    async fn register_measurement(
        &self,
        request: Request<RegisterMeasurementRequest>,
    ) -> Result<Response<Measurement>, Status> {
        let (caller, req) = Caller::from_request(request)?;
        let user_id = validate::id("user_id", &req.user_id)?.to_owned();
        caller.may_reach(&user_id)?;
        let feet = validate::feet(req.left.as_ref(), req.right.as_ref())?;
        if req.scan_object_keys.is_empty() || req.scan_object_keys.len() > MAX_SCANS {
            return Err(FieldError::new(
                "scan_object_keys",
                format!("needs 1-{MAX_SCANS} keys from CreateUpload"),
            )
            .into());
        }
        let prefix = scan_prefix(&user_id);
        for (i, key) in req.scan_object_keys.iter().enumerate() {
            let field = format!("scan_object_keys[{i}]");
            if !key.starts_with(&prefix) {
                return Err(FieldError::new(
                    field,
                    format!("{key:?} is not an upload of this user"),
                )
                .into());
            }
            if req.scan_object_keys[..i].contains(key) {
                return Err(FieldError::new(field, format!("{key} is named twice")).into());
            }
            if !self.0.objects.exists(key).await.map_err(objects_status)? {
                return Err(FieldError::new(field, format!("{key} has not been uploaded")).into());
            }
        }
        if req.device.chars().count() > 200 {
            return Err(FieldError::new("device", "must be at most 200 characters").into());
        }
        let created_at_ms = now_ms();
        let measured_at_ms = match &req.measured_at {
            Some(t) => ms_from_timestamp("measured_at", t)?,
            None => created_at_ms,
        };
        if measured_at_ms > created_at_ms + 24 * 3600 * 1000 {
            return Err(FieldError::new("measured_at", "is more than a day in the future").into());
        }
        let m = NewMeasurement {
            measurement_id: random_id(),
            user_id,
            feet,
            scan_object_keys: req.scan_object_keys,
            device: req.device,
            measured_at_ms,
            created_at_ms,
        };
        self.0
            .store
            .insert_measurement(&m)
            .await
            .map_err(store_status)?;
        Ok(Response::new(measurement_to_pb(&m)))
    }

    async fn get_measurement(
        &self,
        request: Request<GetMeasurementRequest>,
    ) -> Result<Response<Measurement>, Status> {
        let (caller, req) = Caller::from_request(request)?;
        let user_id = validate::id("user_id", &req.user_id)?;
        caller.may_reach(user_id)?;
        let id = validate::id("measurement_id", &req.measurement_id)?;
        match self.0.reachable_measurement(&caller, user_id, id).await? {
            Some(m) => Ok(Response::new(measurement_to_pb(&m))),
            None => Err(Status::not_found(format!(
                "measurement {id} of user {user_id}"
            ))),
        }
    }

    async fn list_measurements(
        &self,
        request: Request<ListMeasurementsRequest>,
    ) -> Result<Response<ListMeasurementsResponse>, Status> {
        let (caller, req) = Caller::from_request(request)?;
        let user_id = validate::id("user_id", &req.user_id)?;
        caller.may_reach(user_id)?;
        let page = self
            .0
            .store
            .list_measurements(user_id, page_size(req.page_size), &req.page_token)
            .await
            .map_err(store_status)?;
        for m in &page.items {
            caller.may_reach(&m.user_id)?;
        }
        Ok(Response::new(ListMeasurementsResponse {
            measurements: page.items.iter().map(measurement_to_pb).collect(),
            next_page_token: page.next_token,
        }))
    }

    /// Deletes the scans first and the rows last: if a scan delete fails, the rows still name
    /// every scan and a retry finishes the job.
    async fn delete_measurement(
        &self,
        request: Request<DeleteMeasurementRequest>,
    ) -> Result<Response<DeleteMeasurementResponse>, Status> {
        let (caller, req) = Caller::from_request(request)?;
        let user_id = validate::id("user_id", &req.user_id)?;
        caller.may_reach(user_id)?;
        let id = validate::id("measurement_id", &req.measurement_id)?;
        let Some(m) = self.0.reachable_measurement(&caller, user_id, id).await? else {
            return Ok(Response::new(DeleteMeasurementResponse { deleted: false }));
        };
        for key in &m.scan_object_keys {
            self.0.objects.delete(key).await.map_err(objects_status)?;
        }
        let deleted = self
            .0
            .store
            .delete_measurement(&m.user_id, &m.measurement_id)
            .await
            .map_err(store_status)?;
        Ok(Response::new(DeleteMeasurementResponse { deleted }))
    }
}
