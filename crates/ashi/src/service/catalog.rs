//! `ashi.v1.CatalogService`: shoes and their per-size inner dimensions.

use super::convert::{shoe_from_pb, shoe_to_pb};
use super::{Caller, Shared, page_size, store_status};
use crate::catalog_csv;
use crate::pb::catalog_service_server::CatalogService;
use crate::pb::*;
use crate::validate::{self, FieldError};
use tonic::{Request, Response, Status};

/// The service.
pub struct Catalog(pub Shared);

#[tonic::async_trait]
impl CatalogService for Catalog {
    async fn upsert_shoe(
        &self,
        request: Request<UpsertShoeRequest>,
    ) -> Result<Response<Shoe>, Status> {
        // The catalog holds no user's data: any identified caller may use it.
        let (_caller, req) = Caller::from_request(request)?;
        let shoe = req
            .shoe
            .ok_or_else(|| FieldError::new("shoe", "is required"))?;
        let shoe = shoe_from_pb(shoe)?;
        self.0
            .store
            .upsert_shoes(std::slice::from_ref(&shoe))
            .await
            .map_err(store_status)?;
        Ok(Response::new(shoe_to_pb(&shoe)))
    }

    async fn get_shoe(&self, request: Request<GetShoeRequest>) -> Result<Response<Shoe>, Status> {
        let (_caller, req) = Caller::from_request(request)?;
        let id = validate::id("shoe_id", &req.shoe_id)?;
        match self.0.store.get_shoe(id).await.map_err(store_status)? {
            Some(shoe) => Ok(Response::new(shoe_to_pb(&shoe))),
            None => Err(Status::not_found(format!("no shoe {id} in the catalog"))),
        }
    }

    async fn list_shoes(
        &self,
        request: Request<ListShoesRequest>,
    ) -> Result<Response<ListShoesResponse>, Status> {
        let (_caller, req) = Caller::from_request(request)?;
        let page = self
            .0
            .store
            .list_shoes(page_size(req.page_size), &req.page_token)
            .await
            .map_err(store_status)?;
        Ok(Response::new(ListShoesResponse {
            shoes: page.items.iter().map(shoe_to_pb).collect(),
            next_page_token: page.next_token,
        }))
    }

    async fn import_shoes_csv(
        &self,
        request: Request<ImportShoesCsvRequest>,
    ) -> Result<Response<ImportShoesCsvResponse>, Status> {
        let (_caller, req) = Caller::from_request(request)?;
        let shoes =
            catalog_csv::parse(&req.csv).map_err(|e| FieldError::new("csv", e.to_string()))?;
        self.0
            .store
            .upsert_shoes(&shoes)
            .await
            .map_err(store_status)?;
        Ok(Response::new(ImportShoesCsvResponse {
            shoes: shoes.len() as u32,
            sizes: shoes.iter().map(|s| s.sizes.len() as u32).sum(),
        }))
    }
}
