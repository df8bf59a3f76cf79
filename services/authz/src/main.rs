//! The authz service binary.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = authz::Settings::load()?;
    let _telemetry = chat_telemetry::init(authz::SERVICE, &settings.telemetry);
    chat_kit::run_basic_service(
        authz::SERVICE,
        &settings.http,
        authz::routes,
        chat_kit::shutdown_signal(),
    )
    .await?;
    Ok(())
}
