//! The contacts service binary.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = contacts::Settings::load()?;
    let _telemetry = chat_telemetry::init(contacts::SERVICE, &settings.telemetry);
    let routes = contacts::routes(chat_auth::Verifier::new(&settings.auth));
    chat_kit::run_basic_service(contacts::SERVICE, &settings.http, routes, chat_kit::shutdown_signal()).await?;
    Ok(())
}
