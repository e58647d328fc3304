//! Test databases: a fresh in-memory SQLite, or a fresh PostgreSQL database with a random
//! name on the server named by `DATABASE_URL` (default: the local trust-auth server),
//! dropped at the end of the test.

#![allow(dead_code)]

use admin_app::db::Database;
use sqlx::Connection;

/// A database created for one test.
pub struct TestDb {
    pub database: Database,
    cleanup: Option<(String, String)>,
}

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let database = Database::connect("sqlite::memory:").await.expect("sqlite");
        Self {
            database,
            cleanup: None,
        }
    }

    pub async fn postgres() -> Self {
        let admin_url = server_url();
        let name = format!(
            "admin_test_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL must be reachable at DATABASE_URL (or 127.0.0.1:5432)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("DATABASE_URL has no database path: {admin_url}"),
        };
        let database = Database::connect(&url)
            .await
            .expect("connect test database");
        Self {
            database,
            cleanup: Some((admin_url, name)),
        }
    }

    pub async fn drop(self) {
        let Self { database, cleanup } = self;
        drop(database);
        if let Some((admin_url, name)) = cleanup {
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("reconnect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop test database");
        }
    }
}
