//! The database: a connection pool to PostgreSQL (the private cluster or `DATABASE_URL`),
//! with the migrations in `migrations/` applied at start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::StorageArgs;
use crate::embedded_pg::{Ownership, PrivatePostgres, DATABASE_NAME};

/// The migrations, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// An open, migrated database, and the private cluster behind it if there is one.
#[derive(Debug)]
pub struct Database {
    pool: PgPool,
    private: Option<Arc<PrivatePostgres>>,
    ownership: Ownership,
}

impl Database {
    /// Connects (starting the private cluster when no URL is configured) and migrates.
    pub async fn open(storage: &StorageArgs, ownership: Ownership) -> Result<Self> {
        let (options, private) = match &storage.database_url {
            Some(url) => {
                let options: PgConnectOptions = url
                    .parse()
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?;
                (options, None)
            }
            None => {
                let dir = storage.state_dir().join("postgres");
                let private = tokio::task::spawn_blocking(move || PrivatePostgres::start(&dir))
                    .await?
                    .context("Failed to start the private PostgreSQL")?;
                private.ensure_database(DATABASE_NAME).await?;
                (
                    private.connect_options(DATABASE_NAME),
                    Some(Arc::new(private)),
                )
            }
        };
        let pool = connect(options).await?;
        MIGRATOR
            .run(&pool)
            .await
            .context("Failed to apply the database migrations")?;
        Ok(Database {
            pool,
            private,
            ownership,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, then stops the private cluster if this process owns it.
    pub async fn close(self) {
        self.pool.close().await;
        let owned = self.ownership == Ownership::Owner;
        if let Some(private) = self.private.filter(|p| owned || p.started_here()) {
            match tokio::task::spawn_blocking(move || private.stop()).await {
                Ok(Ok(())) => tracing::info!("private PostgreSQL stopped"),
                Ok(Err(e)) => tracing::error!(error = %e, "could not stop the private PostgreSQL"),
                Err(e) => tracing::error!(error = %e, "could not stop the private PostgreSQL"),
            }
        }
    }
}

/// A pool with timeouts that turn an outage into a prompt error rather than a hang.
pub async fn connect(options: PgConnectOptions) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("Failed to connect to PostgreSQL")
}
