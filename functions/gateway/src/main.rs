//! The gateway Lambda: the same router `pullgate serve` runs, fed by
//! lambda_http from API Gateway HTTP API (payload v2). This binary only
//! wires: mappings in, client address from the trusted request context.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use pullgate_domain::mapping::MappingTable;
use pullgate_router::{ClientAddr, Gateway, GatewayConfig};

/// Mappings bundled with the function until the DynamoDB store serves them.
const EMBEDDED_MAPPINGS: &str = include_str!("../../../examples/mappings.toml");

fn load_mappings() -> anyhow::Result<MappingTable> {
    let text = match std::env::var("PULLGATE_MAPPINGS_FILE") {
        Ok(path) => std::fs::read_to_string(&path)?,
        Err(_) => EMBEDDED_MAPPINGS.to_string(),
    };
    Ok(MappingTable::from_toml(&text)?)
}

/// The client address is API Gateway's `sourceIp`, never a header the
/// client could set.
fn with_client_addr(mut request: Request) -> Request {
    let source_ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    if let Some(addr) = source_ip.and_then(|ip| ip.parse().ok()) {
        request.extensions_mut().insert(ClientAddr(addr));
    }
    request
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .init();
    let table = load_mappings()?;
    let router = pullgate_router::router(Gateway::new(table, GatewayConfig::default()));
    let service = tower::ServiceBuilder::new()
        .map_request(with_client_addr)
        .service(router);
    lambda_http::run(service).await
}
