//! What a call from a browser needs on its way through a route: gRPC-Web translated to gRPC
//! and back, and the CORS headers that let the page read the response.

use http::request::Parts;
use http::{HeaderMap, Response};

use super::cors::Allowed;
use super::exchange::Protocol;
use crate::adapt::grpc_web::{self, Mode};
use crate::body::Body;
use crate::route::Route;

/// A request's browser-facing needs, decided once the route is known.
pub struct Browser<'a> {
    allowed: Option<Allowed<'a>>,
    grpc_web: Option<Mode>,
}

impl<'a> Browser<'a> {
    /// What `route` does for a request with these headers.
    pub fn of(route: &'a Route, protocol: Protocol, headers: &HeaderMap) -> Self {
        let translate = protocol == Protocol::GrpcWeb && route.grpc_web;
        Browser {
            allowed: Allowed::of(route.cors.as_ref(), headers),
            grpc_web: translate.then(|| Mode::of(headers)).flatten(),
        }
    }

    /// The request as the upstream must see it.
    pub fn request(&self, parts: &mut Parts, body: Body) -> Body {
        match self.grpc_web {
            Some(mode) => grpc_web::request(parts, body, mode),
            None => body,
        }
    }

    /// The response, from the upstream or the gateway itself, as the browser must see it.
    pub fn response(&self, response: Response<Body>) -> Response<Body> {
        if self.allowed.is_none() && self.grpc_web.is_none() {
            return response;
        }
        let (mut parts, mut body) = response.into_parts();
        if let Some(mode) = self.grpc_web {
            body = grpc_web::response(&mut parts, body, mode);
        }
        if let Some(allowed) = &self.allowed {
            allowed.apply(&mut parts.headers);
        }
        Response::from_parts(parts, body)
    }
}
