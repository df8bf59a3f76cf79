//! The web client's own server (`web`): the page and its modules (`web_client::configure`) with
//! the health and metrics endpoints every service has, for a deployment of its own (k8s). The
//! standalone serves the same client next to the API instead.

mod server;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = server::Settings::load()?;
    let _telemetry = chat_telemetry::init(server::SERVICE, &settings.telemetry);
    server::run(settings, chat_kit::shutdown_signal()).await
}
