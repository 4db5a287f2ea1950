//! The HTTP front of sluice: one listener for every service, request ids,
//! body limits, `/health`, graceful shutdown, and the routing of decoded
//! requests to the service crates.
//!
//! It owns no semantics: `sluice-protocol` decodes and renders, the service
//! crates decide. This crate only connects them and keeps the server healthy.

mod sts;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sluice_core::AwsError;
use sluice_protocol::{ApiRequest, ServiceKind, WireProtocol};
use sluice_sqs::{RequestContext, Sqs};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Largest request body read (SQS batches of 1 MiB grow when URL- or JSON-escaped).
pub const REQUEST_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often expired messages are reclaimed.
pub const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Server settings.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Default region (when a request carries no SigV4 scope).
    pub region: String,
    /// The account every caller acts as (until authentication maps keys to accounts).
    pub account_id: String,
}

/// Everything a request handler needs.
pub struct App {
    /// The SQS service.
    pub sqs: Arc<Sqs>,
    /// Settings.
    pub config: AppConfig,
}

/// An error the server itself answers with (not a service's).
#[derive(Debug)]
struct ServerError {
    code: &'static str,
    status: u16,
    message: String,
}

impl AwsError for ServerError {
    fn code(&self) -> &str {
        self.code
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn message(&self) -> String {
        self.message.clone()
    }
}

impl App {
    /// Handles one HTTP request.
    pub async fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let request_id = sluice_core::ids::request_id();
        if req.method() == http::Method::GET && req.uri().path() == "/health" {
            // 200 while the server answers; `writes` says whether the
            // storage engine accepts writes (a full disk degrades it);
            // `long_poll_waiters` counts parked long polls (`--max-waiters`).
            let store = self.sqs.store();
            let problem = store.write_problem();
            let body = serde_json::json!({
                "status": "ok",
                "engine": store.engine_name(),
                "writes": problem.as_deref().unwrap_or("ok"),
                "long_poll_waiters": self.sqs.waiting(),
                "version": env!("CARGO_PKG_VERSION"),
            });
            return plain(StatusCode::OK, "application/json", body.to_string());
        }
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, REQUEST_BODY_BYTES_MAX).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    return plain(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "Request body too large".into());
                }
                return plain(StatusCode::BAD_REQUEST, "text/plain", "Could not read the request body".into());
            }
        };
        let api = match sluice_protocol::decode_typed(&parts.method, &parts.uri, &parts.headers, &body) {
            Ok(a) => a,
            Err(e) => {
                let d = e.detected();
                let r = sluice_protocol::render_error(
                    d.service.unwrap_or(ServiceKind::Sqs),
                    d.protocol.unwrap_or(WireProtocol::Query),
                    &e,
                    &request_id,
                );
                tracing::debug!(request_id, error = %e, "undecodable request");
                return rendered(r);
            }
        };
        let r = self.route(api, &request_id).await;
        rendered(r)
    }

    async fn route(self: &Arc<Self>, api: ApiRequest, request_id: &str) -> sluice_protocol::Rendered {
        let region = api.scope.as_ref().map(|s| s.region.clone()).filter(|r| !r.is_empty());
        let ctx = RequestContext {
            account: self.config.account_id.clone(),
            region: region.unwrap_or_else(|| self.config.region.clone()),
            host: api.host.clone(),
            path: api.path.clone(),
            access_key: api.scope.as_ref().map(|s| s.access_key.clone()),
        };
        let started = std::time::Instant::now();
        let result = match api.service {
            ServiceKind::Sqs => match api.typed {
                Some(typed) => self.sqs.dispatch_typed(typed, &ctx).await,
                None => self.sqs.dispatch(&api.operation, api.input, &ctx).await,
            }
            .map_err(|e| Box::new(e) as Box<dyn AwsError>),
            ServiceKind::Sts => sts::dispatch(&api.operation, &ctx).map_err(|e| Box::new(e) as Box<dyn AwsError>),
            ServiceKind::Sns | ServiceKind::Kinesis => Err(Box::new(ServerError {
                code: "InvalidAction",
                status: 400,
                message: format!(
                    "The action {} is not valid for this endpoint: {} is not served by this sluice build yet.",
                    api.operation,
                    api.service.signing_name()
                ),
            }) as Box<dyn AwsError>),
        };
        tracing::debug!(request_id, op = %api.operation, micros = started.elapsed().as_micros() as u64, ok = result.is_ok(), "request");
        match result {
            Ok(out) => sluice_protocol::render_output(api.service, api.protocol, &api.operation, &out, request_id),
            Err(e) => {
                if e.status() >= 500 {
                    tracing::warn!(request_id, op = %api.operation, code = e.code(), "request failed");
                }
                sluice_protocol::render_error(api.service, api.protocol, e.as_ref(), request_id)
            }
        }
    }
}

fn plain(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    r
}

fn rendered(r: sluice_protocol::Rendered) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in r.headers {
        resp.headers_mut().append(k, v);
    }
    resp
}

/// Reclaims expired messages in the background until the app is dropped.
pub fn spawn_maintenance(app: &Arc<App>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRY_SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { break };
            let now = app.sqs.clock().now_ms();
            match app.sqs.store().expire(now).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(expired = n, "reclaimed expired messages"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
        }
    })
}

/// Serves `listener` until `shutdown` resolves, then stops accepting, ends
/// long polls, and waits (up to `SHUTDOWN_GRACE`) for in-flight requests.
/// Speaks HTTP/1.1 and cleartext HTTP/2 on the same port.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(req).await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::trace!(error = %e, "connection ended with error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    app.sqs.begin_shutdown();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("in-flight requests still running after the shutdown grace period"),
    }
    Ok(())
}
