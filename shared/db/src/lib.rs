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

impl DbError {
    /// True when trying the same statement again cannot succeed: the data itself was refused
    /// (PostgreSQL class 22, data exception, e.g. `invalid byte sequence for encoding "UTF8":
    /// 0x00`), a constraint was violated, or a stored value cannot be decoded. Connection losses, timeouts, missing tables (a
    /// migration in progress) and the like are transient: worth a retry after a backoff.
    pub fn is_permanent(&self) -> bool {
        // A stored value that cannot be decoded will not decode on the next try either.
        if let DbError::Db(sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)) = self {
            return true;
        }
        let DbError::Db(sqlx::Error::Database(db)) = self else {
            return false;
        };
        let constraint = !matches!(db.kind(), sqlx::error::ErrorKind::Other);
        let data_exception = db.code().is_some_and(|code| code.starts_with("22"));
        constraint || data_exception
    }
}

fn is_plain_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The advisory lock key creating schemas is serialised by (any constant; "chat" in ASCII).
const SCHEMA_LOCK: i64 = 0x6368_6174;

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
        // `CREATE SCHEMA IF NOT EXISTS` is not safe when run at once by several processes
        // (replicas starting together: one fails on the catalog's unique index), so it runs
        // under a transaction-scoped advisory lock.
        let bootstrap = AnyPoolOptions::new().max_connections(1).connect(&url).await?;
        let mut tx = bootstrap.begin().await?;
        tx.execute(format!("SELECT pg_advisory_xact_lock({SCHEMA_LOCK})").as_str()).await?;
        tx.execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str()).await?;
        tx.commit().await?;
        bootstrap.close().await;
    }
    let idle_timeout_ms = settings.idle_in_transaction_timeout_ms;
    let pool = AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        // No ping per acquire: it is a round trip on every query of the hot path. A connection
        // that died is found by the query that uses it, which fails like any transient error
        // (its caller retries), and the pool replaces it.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            let mut statements = if postgres {
                vec![format!("SET search_path TO \"{schema}\"")]
            } else {
                vec!["PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;".to_owned()]
            };
            if postgres && idle_timeout_ms > 0 {
                statements.push(format!("SET idle_in_transaction_session_timeout = {idle_timeout_ms}"));
            }
            Box::pin(async move {
                for statement in &statements {
                    conn.execute(statement.as_str()).await?;
                }
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
    use sqlx::Executor;

    use super::DbError;

    /// Against the machine's PostgreSQL (`E2E_DATABASE_URL`), in a schema of its own.
    #[tokio::test]
    async fn data_the_database_refuses_is_permanent_and_a_missing_table_is_not() {
        sqlx::any::install_default_drivers();
        let url =
            std::env::var("E2E_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/chat".into());
        let Ok(pool) = sqlx::AnyPool::connect(&url).await else {
            panic!("PostgreSQL is needed at {url} (make test starts it)");
        };
        let schema = format!("e2e_db_{}", std::process::id());
        pool.execute(format!("CREATE SCHEMA \"{schema}\"").as_str()).await.unwrap();
        pool.execute(format!("CREATE TABLE \"{schema}\".t (v TEXT PRIMARY KEY)").as_str()).await.unwrap();
        let insert = format!("INSERT INTO \"{schema}\".t (v) VALUES ($1)");
        let nul = sqlx::query(&insert).bind("a\u{0}b").execute(&pool).await.unwrap_err();
        assert!(DbError::Db(nul).is_permanent(), "a NUL in text is refused for good");
        sqlx::query(&insert).bind("x").execute(&pool).await.unwrap();
        let twice = sqlx::query(&insert).bind("x").execute(&pool).await.unwrap_err();
        assert!(DbError::Db(twice).is_permanent(), "a unique violation is permanent");
        let missing = sqlx::query(&format!("SELECT v FROM \"{schema}\".missing")).execute(&pool).await.unwrap_err();
        assert!(!DbError::Db(missing).is_permanent(), "a missing table may come back");
        pool.execute(format!("DROP SCHEMA \"{schema}\" CASCADE").as_str()).await.unwrap();
    }

    /// Replicas starting together on an empty database all come up (one used to fail on the
    /// catalog's unique index while another created the schema).
    #[tokio::test]
    async fn processes_connecting_at_once_to_a_new_schema_all_succeed() {
        let url =
            std::env::var("E2E_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/chat".into());
        for round in 0..5 {
            let schema = format!("e2e_db_race_{}_{round}", std::process::id());
            let settings = chat_kit::DatabaseSettings {
                url: url.clone(),
                schema: schema.clone(),
                max_connections: 1,
                idle_in_transaction_timeout_ms: 0,
            };
            let connects = (0..8).map(|_| super::connect(&settings, &sqlx::migrate::Migrator::DEFAULT));
            let results = futures_util::future::join_all(connects).await;
            let failed: Vec<String> = results.iter().filter_map(|r| r.as_ref().err().map(|e| e.to_string())).collect();
            let pool = results.into_iter().find_map(Result::ok).expect("one connected");
            pool.execute(format!("DROP SCHEMA \"{schema}\" CASCADE").as_str()).await.unwrap();
            assert!(failed.is_empty(), "round {round}: {failed:?}");
        }
    }

    #[test]
    fn schema_names_are_plain() {
        assert!(super::is_plain_identifier("rooms_e2e_1"));
        assert!(!super::is_plain_identifier("rooms\"; drop"));
        assert!(!super::is_plain_identifier(""));
    }
}
