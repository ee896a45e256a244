//! An in-memory `testing.bookstore.Bookstore` (proto/testing/bookstore.proto), served by tonic
//! over h2c: the gRPC service behind the gateway's REST transcoding tests. It implements
//! shelves, books, a server stream (`WatchShelf`) and a client stream (`ImportBooks`); the
//! other methods answer UNIMPLEMENTED. Every answer carries `x-backend-call` metadata naming
//! the method, and `GetShelf` echoes the caller's `authorization` metadata back as
//! `x-seen-authorization`, so a test can see which request headers reached the backend.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio_stream::{Stream, StreamExt};
use tonic::codegen::Service;
use tonic::{Request, Response, Status, Streaming};

use crate::pb_bookstore::bookstore_server::{Bookstore, BookstoreServer};
use crate::pb_bookstore::{
    Book, CreateBookRequest, CreateShelfRequest, DeleteShelfRequest, GetBookRequest,
    GetShelfRequest, ImportBooksResponse, ListShelvesRequest, ListShelvesResponse, Shelf,
    WatchShelfRequest,
};
use crate::{ServerHandle, accept_loop};

#[derive(Default)]
struct Store {
    next_shelf: i64,
    shelves: BTreeMap<i64, (Shelf, Vec<Book>)>,
}

/// The bookstore service; clones share one store.
#[derive(Clone, Default)]
pub struct BookstoreImpl {
    store: Arc<Mutex<Store>>,
}

fn answer<T>(message: T, call: &'static str) -> Response<T> {
    let mut response = Response::new(message);
    response.metadata_mut().insert(
        "x-backend-call",
        tonic::metadata::MetadataValue::from_static(call),
    );
    response
}

impl BookstoreImpl {
    fn store(&self) -> Result<std::sync::MutexGuard<'_, Store>, Status> {
        self.store
            .lock()
            .map_err(|_| Status::internal("store lock poisoned"))
    }

    fn add_book(&self, shelf: i64, mut book: Book) -> Result<Book, Status> {
        let mut store = self.store()?;
        let (shelf_entry, books) = store
            .shelves
            .get_mut(&shelf)
            .ok_or_else(|| Status::not_found(format!("shelf {shelf} does not exist")))?;
        if book.title.is_empty() {
            return Err(Status::invalid_argument("a book needs a title"));
        }
        book.name = format!("shelves/{shelf}/books/{}", books.len() + 1);
        books.push(book.clone());
        shelf_entry.book_count = books.len() as i32;
        Ok(book)
    }
}

type BookStream = Pin<Box<dyn Stream<Item = Result<Book, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Bookstore for BookstoreImpl {
    async fn list_shelves(
        &self,
        _request: Request<ListShelvesRequest>,
    ) -> Result<Response<ListShelvesResponse>, Status> {
        let store = self.store()?;
        let shelves = store.shelves.values().map(|(s, _)| s.clone()).collect();
        Ok(answer(
            ListShelvesResponse {
                shelves,
                next_page_token: String::new(),
            },
            "ListShelves",
        ))
    }

    async fn create_shelf(
        &self,
        request: Request<CreateShelfRequest>,
    ) -> Result<Response<Shelf>, Status> {
        let mut shelf = request
            .into_inner()
            .shelf
            .ok_or_else(|| Status::invalid_argument("shelf is required"))?;
        let mut store = self.store()?;
        store.next_shelf += 1;
        shelf.id = store.next_shelf;
        shelf.book_count = 0;
        store.shelves.insert(shelf.id, (shelf.clone(), Vec::new()));
        Ok(answer(shelf, "CreateShelf"))
    }

    async fn get_shelf(
        &self,
        request: Request<GetShelfRequest>,
    ) -> Result<Response<Shelf>, Status> {
        let seen = request.metadata().get("authorization").cloned();
        let id = request.into_inner().shelf;
        let store = self.store()?;
        let (shelf, _) = store
            .shelves
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("shelf {id} does not exist")))?;
        let mut response = answer(shelf.clone(), "GetShelf");
        if let Some(seen) = seen {
            response.metadata_mut().insert("x-seen-authorization", seen);
        }
        Ok(response)
    }

    async fn delete_shelf(
        &self,
        request: Request<DeleteShelfRequest>,
    ) -> Result<Response<()>, Status> {
        let id = request.into_inner().shelf;
        self.store()?.shelves.remove(&id);
        Ok(answer((), "DeleteShelf"))
    }

    async fn create_book(
        &self,
        request: Request<CreateBookRequest>,
    ) -> Result<Response<Book>, Status> {
        let request = request.into_inner();
        let book = request
            .book
            .ok_or_else(|| Status::invalid_argument("book is required"))?;
        Ok(answer(self.add_book(request.shelf, book)?, "CreateBook"))
    }

    async fn get_book(&self, request: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        let name = request.into_inner().name;
        let store = self.store()?;
        store
            .shelves
            .values()
            .flat_map(|(_, books)| books)
            .find(|b| b.name == name)
            .cloned()
            .map(|b| answer(b, "GetBook"))
            .ok_or_else(|| Status::not_found(format!("{name} does not exist")))
    }

    /// Sends every book on the shelf, one message each, then ends; a missing shelf fails
    /// before any message.
    async fn watch_shelf(
        &self,
        request: Request<WatchShelfRequest>,
    ) -> Result<Response<BookStream>, Status> {
        let id = request.into_inner().shelf;
        let books = {
            let store = self.store()?;
            store
                .shelves
                .get(&id)
                .map(|(_, books)| books.clone())
                .ok_or_else(|| Status::not_found(format!("shelf {id} does not exist")))?
        };
        let stream = tokio_stream::iter(books.into_iter().map(Ok));
        Ok(answer(Box::pin(stream) as BookStream, "WatchShelf"))
    }

    async fn import_books(
        &self,
        request: Request<Streaming<CreateBookRequest>>,
    ) -> Result<Response<ImportBooksResponse>, Status> {
        let mut stream = request.into_inner();
        let mut names = Vec::new();
        while let Some(item) = stream.next().await {
            let item = item?;
            let book = item
                .book
                .ok_or_else(|| Status::invalid_argument("book is required"))?;
            names.push(self.add_book(item.shelf, book)?.name);
        }
        Ok(answer(
            ImportBooksResponse {
                imported: names.len() as i32,
                names,
            },
            "ImportBooks",
        ))
    }
}

/// Binds `127.0.0.1:0` and serves the bookstore over h2c until the handle is dropped.
pub async fn serve_bookstore() -> io::Result<(SocketAddr, ServerHandle)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let service = BookstoreServer::new(BookstoreImpl::default());
    let task = tokio::spawn(accept_loop(listener, move |stream| {
        let service = service.clone();
        async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |request| {
                // The generated server is always ready; `call` alone is enough.
                let mut service = service.clone();
                async move { service.call(request).await }
            });
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(io, service)
                .await;
        }
    }));
    Ok((addr, ServerHandle::new(addr, task)))
}
