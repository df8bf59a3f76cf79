//! The line-gateway service binary.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = line_gateway::Settings::load()?;
    let _telemetry = chat_telemetry::init(line_gateway::SERVICE, &settings.telemetry);
    line_gateway::run(settings, chat_kit::shutdown_signal()).await
}
