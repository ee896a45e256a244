//! The gRPC services. Each handler reads top to bottom: take the caller (see [`caller`]),
//! validate, check the caller may reach the user's data, act, convert; errors become a
//! `tonic::Status` that names the field or thing that was wrong.

pub mod caller;
pub mod catalog;
mod convert;
pub mod measurement;
pub mod sizing;

pub use caller::{Caller, SERVICE_HEADER, USER_HEADER};

use crate::objects::Objects;
use crate::store::{self, Store, StoredMeasurement};
use crate::validate::FieldError;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;

/// What every service shares.
pub struct App {
    pub store: Store,
    pub objects: Objects,
    pub upload_expiry: Duration,
    pub max_upload_bytes: u64,
    pub toe_tolerance_mm: f64,
}

/// Shared handle to [`App`].
pub type Shared = Arc<App>;

impl App {
    /// The measurement `measurement_id` of `user_id`, if it exists and `caller` may reach it.
    /// The caller is checked against the user the request names before the read, and against
    /// the owner of the row actually read after it: every handler that reads a stored
    /// measurement goes through here.
    pub async fn reachable_measurement(
        &self,
        caller: &Caller,
        user_id: &str,
        measurement_id: &str,
    ) -> Result<Option<StoredMeasurement>, Status> {
        caller.may_reach(user_id)?;
        let found = self
            .store
            .get_measurement(user_id, measurement_id)
            .await
            .map_err(store_status)?;
        if let Some(m) = &found {
            caller.may_reach(&m.user_id)?;
        }
        Ok(found)
    }
}

/// Largest page a listing returns.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Page size when the client asks for none.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// The page size to use for a request's `page_size`.
pub fn page_size(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

impl From<FieldError> for Status {
    fn from(e: FieldError) -> Self {
        Status::invalid_argument(e.to_string())
    }
}

/// Maps storage errors: client mistakes to INVALID_ARGUMENT, the rest to INTERNAL (logged,
/// with no details sent to the client).
pub fn store_status(e: store::Error) -> Status {
    match e {
        store::Error::ScanTaken { key } => Status::invalid_argument(format!(
            "scan_object_keys: {key} already belongs to another measurement"
        )),
        store::Error::BadPageToken => {
            Status::invalid_argument("page_token: not a token this server issued")
        }
        e => {
            tracing::error!(error = %e, "storage failed");
            Status::internal("storage failed")
        }
    }
}

/// Maps object store errors to UNAVAILABLE (logged): the store may come back.
pub fn objects_status(e: crate::objects::Error) -> Status {
    tracing::error!(error = %e, "object store failed");
    Status::unavailable("object store failed")
}
