//! The rooms service binary.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("cluster") {
        println!("{}", rooms::cli::run(&args[1..]).await?);
        return Ok(());
    }
    let settings = rooms::Settings::load()?;
    let _telemetry = chat_telemetry::init("rooms", &settings.telemetry);
    let app = match rooms::Application::build(settings).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "rooms failed to start");
            return Err(err);
        }
    };
    app.run_until_stopped(chat_kit::shutdown_signal()).await
}
