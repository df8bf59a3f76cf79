//! The contacts service binary.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = contacts::Settings::load()?;
    let _telemetry = chat_telemetry::init(contacts::SERVICE, &settings.telemetry);
    contacts::run(settings, chat_kit::shutdown_signal()).await
}
