use super::*;
use pullgate_domain::event::Event;
use pullgate_domain::sink::EventSink;
use std::io::{Read, Write};

/// A sink whose stream refuses everything.
struct Refusing;

impl EventSink for Refusing {
    fn submit(&self, _: &Event<'_>) {}
    fn accepting(&self) -> bool {
        false
    }
}

/// An admin whose recorder is its own (not the process's), with one
/// request counted through it.
fn admin() -> Admin {
    let recorder = metrics::builder().unwrap().build_recorder();
    let handle = recorder.handle();
    ::metrics::with_local_recorder(&recorder, || {
        ::metrics::counter!("pullgate_requests_total", "kind" => "ping", "status" => "200", "path" => "local")
            .increment(1);
    });
    // The recorder is dropped here; the handle keeps what it recorded.
    Admin {
        metrics: handle,
        readiness: Arc::new(Readiness::default()),
    }
}

async fn body(response: Response<Body>) -> (StatusCode, String, String) {
    use http_body_util::BodyExt;
    let status = response.status();
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_three_endpoints_and_nothing_else() {
    let admin = admin();
    let (status, content_type, text) = body(admin.answer(&Method::GET, "/metrics")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, METRICS_TYPE)
    );
    assert!(
        text.contains(r#"pullgate_requests_total{kind="ping",status="200",path="local"} 1"#),
        "{text}"
    );
    let (status, _, text) = body(admin.answer(&Method::GET, "/healthz")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ok"));
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/metrics/"),
        (Method::GET, "/v2/"),
        (Method::GET, "/Metrics"),
        (Method::GET, "/healthz/"),
        (Method::POST, "/metrics"),
        (Method::DELETE, "/readyz"),
    ] {
        let (status, _, _) = body(admin.answer(&method, path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
}

#[tokio::test]
async fn readyz_says_why_it_is_not_ready() {
    let admin = admin();
    let (status, _, text) = body(admin.answer(&Method::GET, "/readyz")).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "mappings not loaded")
    );
    admin.readiness.set_mappings_loaded(true);
    let (status, _, text) = body(admin.answer(&Method::GET, "/readyz")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ready"));
    admin.readiness.watch_sink(Arc::new(Refusing));
    let (status, _, text) = body(admin.answer(&Method::GET, "/readyz")).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "event sink not accepting")
    );
    // Still alive, though.
    let (status, _, _) = body(admin.answer(&Method::GET, "/healthz")).await;
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn an_admin_address_a_public_listener_takes_is_refused() {
    let public: Vec<SocketAddr> = vec![
        "127.0.0.1:8080".parse().unwrap(),
        "0.0.0.0:8443".parse().unwrap(),
    ];
    for taken in [
        "127.0.0.1:8080",
        "0.0.0.0:8080",
        "127.0.0.1:8443",
        "[::]:8443",
    ] {
        let error = check_address(taken.parse().unwrap(), &public)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!(
                "--admin-listen {taken} overlaps the public --listen"
            )),
            "{error}"
        );
    }
    for free in ["127.0.0.1:9090", "127.0.0.2:8080", "127.0.0.1:0"] {
        check_address(free.parse().unwrap(), &public).unwrap();
    }
}

/// One HTTP/1.1 request over a plain socket: the status line and the body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
fn it_serves_on_its_own_thread_until_stopped() {
    let admin = admin();
    admin.readiness.set_mappings_loaded(true);
    let running = spawn(TcpListener::bind("127.0.0.1:0").unwrap(), admin).unwrap();
    let addr = running.addr;
    assert_eq!(
        get(addr, "/healthz"),
        ("HTTP/1.1 200 OK".into(), "ok".into())
    );
    assert_eq!(get(addr, "/readyz").1, "ready");
    assert_eq!(get(addr, "/nope").0, "HTTP/1.1 404 Not Found");
    assert!(get(addr, "/metrics").1.contains("pullgate_requests_total"));
    running.stop();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the socket is closed once stopped"
    );
}
