//! What API Gateway's request context tells the router: the client address
//! and the request id, put into the request's extensions as the router
//! expects them from any entry point.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use pullgate_router::{ClientAddr, RequestId};

/// The client address is API Gateway's `sourceIp`, never a header the
/// client could set; the request id is API Gateway's.
pub fn with_context(mut request: Request) -> Request {
    let (source_ip, request_id) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            (context.http.source_ip.clone(), context.request_id.clone())
        }
        _ => (None, None),
    };
    if let Some(source_ip) = source_ip {
        match source_ip.parse() {
            Ok(addr) => {
                request.extensions_mut().insert(ClientAddr(addr));
            }
            // API Gateway always sends an address; without one the request
            // is still answered, its event and access line carry no client.
            Err(_) => tracing::warn!(source_ip, "API Gateway's sourceIp is no IP address"),
        }
    }
    if let Some(id) = request_id {
        request.extensions_mut().insert(RequestId(id));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
    };
    use std::net::IpAddr;

    fn request(source_ip: Option<&str>, request_id: Option<&str>) -> Request {
        let context = ApiGatewayV2httpRequestContext {
            request_id: request_id.map(str::to_string),
            http: ApiGatewayV2httpRequestContextHttpDescription {
                source_ip: source_ip.map(str::to_string),
                ..Default::default()
            },
            ..Default::default()
        };
        Request::default().with_request_context(RequestContext::ApiGatewayV2(context))
    }

    fn client(request: &Request) -> Option<IpAddr> {
        request.extensions().get::<ClientAddr>().map(|a| a.0)
    }

    #[test]
    fn source_ip_and_request_id_come_from_the_context_never_a_header() {
        let mut request = request(Some("203.0.113.9"), Some("abc-123"));
        request
            .headers_mut()
            .insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        let request = with_context(request);
        assert_eq!(client(&request), "203.0.113.9".parse().ok());
        assert_eq!(
            request
                .extensions()
                .get::<RequestId>()
                .map(|id| id.0.as_str()),
            Some("abc-123")
        );
    }

    #[test]
    fn no_usable_source_ip_means_no_client_address() {
        assert_eq!(client(&with_context(request(None, None))), None);
        assert_eq!(
            client(&with_context(request(Some("not-an-ip"), None))),
            None
        );
        assert!(with_context(Request::default())
            .extensions()
            .get::<RequestId>()
            .is_none());
    }
}
