//! One behaviour suite for the projects repository, run on SQLite and on PostgreSQL.

use admin_app::backend::projects::{ProjectName, Projects, Tenant};
use admin_app::db::Database;

mod support;
use support::TestDb;

async fn suite_isolates_tenants(db: Database) {
    let projects = Projects::new(db);
    let acme = Tenant::from_verified_org_id("org_acme");
    let globex = Tenant::from_verified_org_id("org_globex");
    let a = projects
        .create(&acme, ProjectName::parse("Rocket").unwrap(), "user_a")
        .await
        .unwrap();
    let b = projects
        .create(&globex, ProjectName::parse("Anvil").unwrap(), "user_b")
        .await
        .unwrap();

    let listed: Vec<_> = projects.list(&acme).await.unwrap();
    assert_eq!(listed, vec![a.clone()]);
    assert_eq!(projects.get(&acme, &a.id).await.unwrap(), Some(a.clone()));
    // Another organization's project does not exist for this tenant: no read, no delete.
    assert_eq!(projects.get(&acme, &b.id).await.unwrap(), None);
    assert!(!projects.delete(&acme, &b.id).await.unwrap());
    assert_eq!(projects.get(&globex, &b.id).await.unwrap(), Some(b.clone()));

    assert!(projects.delete(&acme, &a.id).await.unwrap());
    assert!(!projects.delete(&acme, &a.id).await.unwrap());
    assert!(projects.list(&acme).await.unwrap().is_empty());
    assert_eq!(projects.list(&globex).await.unwrap(), vec![b]);
}

async fn suite_lists_in_creation_order(db: Database) {
    let projects = Projects::new(db);
    let acme = Tenant::from_verified_org_id("org_acme");
    let mut created = Vec::new();
    for name in ["one", "two", "three"] {
        created.push(
            projects
                .create(&acme, ProjectName::parse(name).unwrap(), "user_a")
                .await
                .unwrap(),
        );
    }
    assert_eq!(projects.list(&acme).await.unwrap(), created);
}

macro_rules! behaviour_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(db.database.clone()).await;
                    db.drop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::postgres().await;
                    super::$name(db.database.clone()).await;
                    db.drop().await;
                }
            )*
        }
    };
}

behaviour_suite!(suite_isolates_tenants, suite_lists_in_creation_order);
