//! `line-sim [--host H] [--port N]`: the LINE platform simulator as a process. Port 0 (the
//! default) picks a free port; the JSON log's `listening` line says which. Without the flags,
//! `CHAT__HTTP__HOST` and `CHAT__HTTP__PORT` are read, as the e2e harness sets them.

use chat_kit::{shutdown_signal, Health, HttpService, Readiness};
use chat_telemetry::TelemetrySettings;

fn usage() -> ! {
    eprintln!("usage: line-sim [--host HOST] [--port PORT]");
    std::process::exit(2)
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    // The flags win over the environment the services read (`CHAT__HTTP__HOST`, `..._PORT`).
    let mut host = std::env::var("CHAT__HTTP__HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let mut port: u16 = std::env::var("CHAT__HTTP__PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host" => host = args.next().unwrap_or_else(|| usage()),
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }
    let _telemetry = chat_telemetry::init(line_sim::server::SERVICE, &TelemetrySettings::default());
    let sim = std::sync::Arc::new(line_sim::Sim::default());
    let readiness = Readiness::default();
    let settings = line_sim::server::http_settings(&host, port);
    let server = HttpService::bind(
        &settings,
        Health::new(line_sim::server::SERVICE, readiness.clone()),
        line_sim::server::routes(sim),
    )?;
    readiness.set(true);
    server.run_until_stopped(shutdown_signal(), async move { readiness.set(false) }).await?;
    Ok(())
}
