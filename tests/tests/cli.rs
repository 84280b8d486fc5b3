//! The `confab` command line: bootstrap, tokens, migrate, schema.
use confab_tests::{TestDb, cli};
use sea_orm::ConnectionTrait;

#[tokio::test]
async fn bootstrap_prints_ids_and_a_token_once() {
    let db = TestDb::new().await;
    let out = cli(
        &db,
        &[
            "bootstrap",
            "--workspace",
            "acme",
            "--admin-email",
            "Boss@Acme.test",
            "--json",
        ],
    );
    assert!(out.success, "{}", out.stderr);
    let v = out.json();
    for key in ["workspaceId", "userId", "token"] {
        assert!(
            v[key].as_str().is_some_and(|s| !s.is_empty()),
            "missing {key} in {v}"
        );
    }
    let again = cli(
        &db,
        &[
            "bootstrap",
            "--workspace",
            "acme",
            "--admin-email",
            "other@acme.test",
        ],
    );
    assert!(
        !again.success,
        "a second bootstrap of one workspace must fail"
    );
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[tokio::test]
async fn token_create_makes_the_user_once_and_keeps_their_role() {
    let db = TestDb::new().await;
    assert!(
        cli(
            &db,
            &[
                "bootstrap",
                "--workspace",
                "acme",
                "--admin-email",
                "a@acme.test"
            ]
        )
        .success
    );
    let first = cli(
        &db,
        &[
            "token",
            "create",
            "--workspace",
            "acme",
            "--email",
            "bob@acme.test",
            "--role",
            "agent",
            "--json",
        ],
    );
    assert!(first.success, "{}", first.stderr);
    let second = cli(
        &db,
        &[
            "token",
            "create",
            "--workspace",
            "acme",
            "--email",
            "BOB@acme.test",
            "--role",
            "agent",
            "--json",
        ],
    );
    assert!(second.success, "{}", second.stderr);
    assert_eq!(
        first.json()["userId"],
        second.json()["userId"],
        "one user per email"
    );
    assert_ne!(
        first.json()["token"],
        second.json()["token"],
        "each token is new"
    );
    let promote = cli(
        &db,
        &[
            "token",
            "create",
            "--workspace",
            "acme",
            "--email",
            "bob@acme.test",
            "--role",
            "admin",
        ],
    );
    assert!(!promote.success, "a token never changes a user's role");
    let missing = cli(
        &db,
        &[
            "token",
            "create",
            "--workspace",
            "nope",
            "--email",
            "x@y.test",
            "--role",
            "agent",
        ],
    );
    assert!(!missing.success);
    assert!(
        missing.stderr.contains("workspace not found"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn a_migration_that_fails_leaves_none_of_its_tables_and_the_next_run_finishes() {
    let db = TestDb::new().await;
    let conn = sea_orm::Database::connect(&db.url).await.expect("connect");
    // In the way of the first migration's later tables (it creates `workspaces` first).
    conn.execute_unprepared("CREATE TABLE tasks (id INTEGER)")
        .await
        .expect("create a table in the way");
    let tables = async || -> Vec<String> {
        let sql = if db.is_postgres() {
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
        } else {
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        };
        conn.query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.try_get::<String>("", "name").expect("a name"))
        .collect()
    };

    let failed = cli(&db, &["migrate"]);
    assert!(!failed.success, "migrated over a table in the way");
    let left = tables().await;
    assert!(left.contains(&"tasks".to_string()), "{left:?}");
    assert!(
        !left.contains(&"workspaces".to_string()),
        "half a migration stayed: {left:?}"
    );

    conn.execute_unprepared("DROP TABLE tasks")
        .await
        .expect("clear the way");
    let again = cli(&db, &["migrate"]);
    assert!(again.success, "{}", again.stderr);
    let all = tables().await;
    assert!(all.contains(&"workspaces".to_string()), "{all:?}");
    assert!(all.contains(&"tasks".to_string()), "{all:?}");
    conn.close().await.ok();
}

#[tokio::test]
async fn migrate_is_idempotent_and_schema_prints_sdl() {
    let db = TestDb::new().await;
    assert!(cli(&db, &["migrate"]).success);
    let again = cli(&db, &["migrate"]);
    assert!(again.success, "{}", again.stderr);
    let schema = cli(&db, &["schema"]);
    assert!(schema.success);
    assert!(
        schema.stdout.contains("type Conversation implements Node"),
        "{}",
        &schema.stdout[..200.min(schema.stdout.len())]
    );
}
