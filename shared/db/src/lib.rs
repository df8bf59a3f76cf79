//! One way to open a service's database: PostgreSQL (its own schema, created if needed and put
//! on every connection's search path) or SQLite (WAL, busy timeout, foreign keys), through
//! sqlx's `Any` driver, with the service's embedded migrations applied.

use chat_kit::DatabaseSettings;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database.schema must be a plain identifier, got {0:?}")]
    Schema(String),
}

fn is_plain_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Connect and migrate.
pub async fn connect(settings: &DatabaseSettings, migrator: &Migrator) -> Result<AnyPool, DbError> {
    sqlx::any::install_default_drivers();
    let url = settings.url.clone();
    let postgres = url.starts_with("postgres");
    let schema = settings.schema.clone();
    if postgres && !is_plain_identifier(&schema) {
        return Err(DbError::Schema(schema));
    }
    if postgres {
        // The schema must exist before the pool's connections put it on their search path.
        let bootstrap = AnyPoolOptions::new().max_connections(1).connect(&url).await?;
        bootstrap.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str()).await?;
        bootstrap.close().await;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .after_connect(move |conn, _meta| {
            let statement = if postgres {
                format!("SET search_path TO \"{schema}\"")
            } else {
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;".to_owned()
            };
            Box::pin(async move {
                conn.execute(statement.as_str()).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    migrator.run(&pool).await?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_names_are_plain() {
        assert!(super::is_plain_identifier("rooms_e2e_1"));
        assert!(!super::is_plain_identifier("rooms\"; drop"));
        assert!(!super::is_plain_identifier(""));
    }
}
