//! Real clients against `h2conn` behind a small tokio driver over TCP: the `h2`
//! crate's client, curl and h2load. A missing external tool fails its test.

mod driver;

use std::net::SocketAddr;
use std::process::Command;

use bytes::Bytes;
use h2conn::Config;
use tokio::net::TcpStream;

async fn h2_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Sends a request (with `body` when given) and returns the status and body.
async fn request(
    client: &mut h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    path: &str,
    body: Option<Bytes>,
) -> (http::StatusCode, Vec<u8>) {
    let method = if body.is_some() { "POST" } else { "GET" };
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(())
        .unwrap();
    let mut client = client.clone().ready().await.unwrap();
    let (response, mut send) = client.send_request(req, body.is_none()).unwrap();
    if let Some(body) = body {
        send.send_data(body, true).unwrap();
    }
    let response = response.await.unwrap();
    let status = response.status();
    let mut body = response.into_body();
    let mut got = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        got.extend_from_slice(&chunk);
    }
    (status, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_client_get() {
    let addr = driver::start(Config::default()).await;
    let mut client = h2_client(addr).await;
    let (status, body) = request(&mut client, addr, "/", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_client_large_bodies_both_ways() {
    let addr = driver::start(Config::default()).await;
    let mut client = h2_client(addr).await;
    let mib = 1 << 20;
    let (status, body) = request(&mut client, addr, &format!("/bytes/{mib}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body, driver::pattern(mib));
    let upload: Bytes = (0..mib)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let (status, body) = request(&mut client, addr, "/echo", Some(upload.clone())).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), upload.len());
    assert!(body == upload, "echoed body differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_client_small_windows_and_many_streams() {
    // Small windows force many WINDOW_UPDATE rounds both ways.
    let config = Config {
        initial_stream_window: 20_000,
        connection_window: 70_000,
        max_buffered_output: 16 * 1024,
        ..Config::default()
    };
    let addr = driver::start(config).await;
    let client = h2_client(addr).await;
    let mut tasks = Vec::new();
    for i in 0..40usize {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            let body: Bytes = vec![(i % 256) as u8; 50_000 + i].into();
            let (status, got) = request(&mut client, addr, "/echo", Some(body.clone())).await;
            assert_eq!(status, 200);
            assert!(got == body, "stream {i} body differs");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_client_trailers_both_ways() {
    let addr = driver::start(Config::default()).await;
    let mut client = h2_client(addr).await.ready().await.unwrap();
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/trailers"))
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(req, false).unwrap();
    send.send_data(Bytes::from_static(b"payload"), false)
        .unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-a", "1".parse().unwrap());
    trailers.insert("x-b", "2".parse().unwrap());
    send.send_trailers(trailers).unwrap();
    let mut body = response.await.unwrap().into_body();
    let mut got = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"payload");
    let trailers = body.trailers().await.unwrap().expect("response trailers");
    assert_eq!(trailers["x-trailers-seen"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_client_sees_a_graceful_shutdown() {
    let addr = driver::start(Config::default()).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client: h2::client::SendRequest<Bytes> = client;
    let (status, body) = request(&mut client, addr, "/shutdown", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, b"hello");
    // The server's two GOAWAYs and PING end the connection cleanly.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), connection).await;
    let result = ended
        .expect("connection did not end after shutdown")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        client.ready().await.is_err(),
        "new requests must be refused"
    );
}

/// Runs an external tool, failing (not skipping) when it is missing.
fn run(tool: &str, args: &[&str]) -> std::process::Output {
    match Command::new(tool).args(args).output() {
        Ok(output) => output,
        Err(err) => panic!("{tool} is required for this test and could not be run: {err}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_prior_knowledge() {
    let addr = driver::start(Config::default()).await;
    let url = format!("http://{addr}/");
    let out = tokio::task::spawn_blocking(move || {
        run(
            "curl",
            &["-sS", "--http2-prior-knowledge", "--max-time", "20", &url],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello");

    let dir = std::env::temp_dir().join(format!("h2conn-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("upload.bin");
    let upload: Vec<u8> = (0..1usize << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &upload).unwrap();
    let url = format!("http://{addr}/echo");
    let data = format!("@{}", file.display());
    let out = tokio::task::spawn_blocking(move || {
        run(
            "curl",
            &[
                "-sS",
                "--http2-prior-knowledge",
                "--max-time",
                "30",
                "--data-binary",
                &data,
                &url,
            ],
        )
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), upload.len());
    assert!(out.stdout == upload, "curl echo differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2load_2000_requests() {
    let addr = driver::start(Config::default()).await;
    let url = format!("http://{addr}/");
    let out = tokio::task::spawn_blocking(move || {
        run("h2load", &["-n", "2000", "-c", "4", "-m", "16", &url])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2000 succeeded, 0 failed, 0 errored"),
        "h2load did not report 2000 successes:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2load_uploads_echoed_under_flow_control() {
    let addr = driver::start(Config::default()).await;
    let dir = std::env::temp_dir().join(format!("h2conn-h2load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("upload.bin");
    std::fs::write(&file, vec![b'u'; 1 << 20]).unwrap();
    let url = format!("http://{addr}/echo");
    let data = file.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        run(
            "h2load",
            &["-n", "64", "-c", "2", "-m", "8", "-d", &data, &url],
        )
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("64 succeeded, 0 failed, 0 errored"),
        "h2load did not report 64 successes:\n{stdout}"
    );
    // Every 1 MiB upload came back in full: 64 MiB of response DATA.
    assert!(stdout.contains("(67108864) data"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nghttp_with_priorities_and_an_upload() {
    let addr = driver::start(Config::default()).await;
    let dir = std::env::temp_dir().join(format!("h2conn-nghttp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("upload.bin");
    let upload: Vec<u8> = (0..1usize << 20).map(|i| (i % 241) as u8).collect();
    std::fs::write(&file, &upload).unwrap();
    let url = format!("http://{addr}/echo");
    let data = file.display().to_string();
    // nghttp opens with PRIORITY frames on idle streams 3 to 11 and a HEADERS
    // with a priority block: accepted and ignored.
    let out = tokio::task::spawn_blocking(move || run("nghttp", &["-d", &data, &url]))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), upload.len());
    assert!(out.stdout == upload, "nghttp echo differs");
}
