//! The line-gateway service binary.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = line_gateway::Settings::load()?;
    let _telemetry = chat_telemetry::init(line_gateway::SERVICE, &settings.telemetry);
    let routes = line_gateway::routes(chat_auth::Verifier::new(&settings.auth));
    chat_kit::run_basic_service(line_gateway::SERVICE, &settings.http, routes, chat_kit::shutdown_signal()).await?;
    Ok(())
}
