//! The gRPC services. Each handler reads top to bottom: validate, act, convert; errors become
//! a `tonic::Status` that names the field or thing that was wrong.

pub mod catalog;
mod convert;
pub mod measurement;
pub mod sizing;

use crate::objects::Objects;
use crate::store::{self, Store};
use crate::validate::FieldError;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;
use tonic::metadata::MetadataMap;

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

/// The gateway sends the subject of the caller's verified token in this header
/// (`forward_claims: { sub: x-user-id }`, replacing any the caller sent). A request that
/// carries it may only name that user; one without it comes from a caller the deployment
/// trusts with every user's data (a partner server behind the gateway's allow list, another
/// service inside the cluster).
pub const USER_HEADER: &str = "x-user-id";

/// Refuses a request whose signed-in user (see [`USER_HEADER`]) is not `user_id`.
pub fn check_user(metadata: &MetadataMap, user_id: &str) -> Result<(), Status> {
    let mut callers = metadata.get_all(USER_HEADER).iter().peekable();
    if callers.peek().is_none() || callers.all(|c| c.as_bytes() == user_id.as_bytes()) {
        return Ok(());
    }
    Err(Status::permission_denied(format!(
        "the signed-in user may only reach their own data, not user {user_id}'s"
    )))
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
