//! The authz service binary.
//!
//! `authz` serves; `authz bootstrap <tenant> <name> <admin>` creates the first tenant and admin
//! (password from `AUTHZ_BOOTSTRAP_PASSWORD`, never from the command line); `authz seed-demo`
//! creates the demo tenants; `authz rotate-key` adds a new signing key.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = authz::Settings::load()?;
    let _telemetry = chat_telemetry::init(authz::SERVICE, &settings.telemetry);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["serve"] => authz::run(settings, chat_kit::shutdown_signal()).await,
        ["bootstrap", tenant, name, admin] => {
            let password = std::env::var("AUTHZ_BOOTSTRAP_PASSWORD")
                .map_err(|_| anyhow::anyhow!("set AUTHZ_BOOTSTRAP_PASSWORD to the admin's password"))?;
            authz::command(settings, |core| async move { Ok(core.bootstrap(tenant, name, admin, &password).await?) })
                .await
        }
        ["seed-demo"] => authz::command(settings, |core| async move { Ok(core.seed_demo().await?) }).await,
        ["rotate-key"] => {
            authz::command(settings, |core| async move {
                let kid = core.keys.rotate().await?;
                tracing::info!(kid, "signing key rotated");
                Ok(())
            })
            .await
        }
        _ => anyhow::bail!("usage: authz [serve | bootstrap <tenant> <name> <admin> | seed-demo | rotate-key]"),
    }
}
