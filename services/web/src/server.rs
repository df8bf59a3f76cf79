//! The `web` binary's settings (compiled-in defaults `config/default.toml`, then the optional
//! file and `CHAT__SECTION__KEY` environment variables) and its server: the service kit's
//! HTTP server (request metrics, `/health/live`, `/health/ready`, `/metrics`, readiness false
//! then a graceful stop on shutdown) with the client's routes.

use std::future::Future;

use chat_kit::HttpSettings;
use chat_telemetry::TelemetrySettings;
use serde::Deserialize;

pub const SERVICE: &str = "web";

/// The compiled-in defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything the web client's server is configured with: where it listens and how it logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub telemetry: TelemetrySettings,
}

impl Settings {
    /// The defaults, then `CHAT_CONFIG`'s file, then the environment.
    pub fn load() -> Result<Self, chat_kit::SettingsError> {
        chat_kit::load_settings(DEFAULTS)
    }
}

/// Serve the client until `shutdown` (nothing to drain: readiness goes false, then in-flight
/// requests finish).
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    chat_kit::run_basic_service(SERVICE, &settings.http, web_client::configure, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use actix_web::test::{call_and_read_body, call_service, init_service, TestRequest};
    use actix_web::App;
    use chat_kit::{Health, Readiness};

    use super::{Settings, DEFAULTS, SERVICE};

    #[test]
    fn the_compiled_in_defaults_parse() {
        let settings: Settings = chat_kit::parse_layers(&[DEFAULTS]).unwrap();
        assert_eq!(settings.http.host, "127.0.0.1");
        assert_eq!(settings.http.port, 8085);
        assert_eq!(settings.telemetry.log_format, "json");
    }

    #[test]
    fn settings_of_other_services_stop_the_boot() {
        // A static server has no bus: the shared `chat-common` ConfigMap's CHAT__AMQP__SHARDS
        // would stop it, which is why its Deployment sets its three keys itself.
        for layer in ["[amqp]\nshards = 256\n", "[http]\nportt = 1\n", "[database]\nurl = \"x\"\n"] {
            assert!(chat_kit::parse_layers::<Settings>(&[DEFAULTS, layer]).is_err(), "{layer}");
        }
    }

    /// The app `HttpService` builds: health and metrics, then the client's routes.
    #[actix_rt::test]
    async fn the_app_serves_the_client_and_the_health_endpoints() {
        let readiness = Readiness::default();
        let app = init_service(
            App::new().configure(Health::new(SERVICE, readiness.clone()).configure()).configure(web_client::configure),
        )
        .await;
        let status = |uri: &'static str| {
            let app = &app;
            async move { call_service(app, TestRequest::get().uri(uri).to_request()).await.status() }
        };
        assert_eq!(status("/health/ready").await, 503, "not ready before the server is up");
        readiness.set(true);
        for uri in ["/", "/app/app.js", "/app/style.css", "/health/live", "/health/ready", "/metrics"] {
            assert_eq!(status(uri).await, 200, "{uri}");
        }
        let ready = call_and_read_body(&app, TestRequest::get().uri("/health/ready").to_request()).await;
        assert!(String::from_utf8_lossy(&ready).contains(r#""service":"web""#));
        // The Ingress sends every path no API route claims here (its catch-all `/`): authz's
        // `/internal/` paths and the API's unrouted ones must find nothing.
        for uri in ["/internal/v1/decide", "/v1/openapi.json", "/v1/rooms", "/app/missing.js"] {
            assert_eq!(status(uri).await, 404, "{uri}");
        }
        readiness.set(false);
        assert_eq!(status("/health/ready").await, 503, "draining");
    }

    /// The binary's `run` over a socket: ready once it listens, request metrics labelled
    /// `web`, and a graceful stop when the shutdown future resolves.
    #[actix_rt::test]
    async fn run_serves_over_http_until_shutdown() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut settings: Settings = chat_kit::parse_layers(&[DEFAULTS]).unwrap();
        settings.http.port = port;
        settings.http.workers = 1;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = actix_web::rt::spawn(super::run(settings, async move {
            let _ = stopped.await;
        }));

        let client = awc::Client::default();
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(res) = client.get(format!("{base}/health/ready")).send().await {
                ready = res.status() == 200;
                if ready {
                    break;
                }
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(ready, "the server never answered /health/ready");
        for (uri, kind) in [("/", "text/html"), ("/app/app.js", "text/javascript")] {
            let res = client.get(format!("{base}{uri}")).send().await.unwrap();
            assert_eq!(res.status(), 200, "{uri}");
            let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
            assert!(content_type.starts_with(kind), "{uri}: {content_type}");
        }
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().body().await.unwrap();
        let metrics = String::from_utf8_lossy(&metrics);
        assert!(metrics.contains(r#"route="/app/{file}""#) && metrics.contains(r#"service="web""#), "{metrics}");

        stop.send(()).unwrap();
        server.await.unwrap().expect("a clean stop");
    }
}
