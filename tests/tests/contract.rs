//! The served schema keeps every promise of the API contract.
use confab_tests::{TestDb, cli, contract::breaking_changes};

fn served_schema(db: &TestDb) -> String {
    let out = cli(db, &["schema"]);
    assert!(out.success, "confab schema failed: {}", out.stderr);
    out.stdout
}

#[tokio::test]
async fn served_schema_keeps_every_name_of_the_contract() {
    let db = TestDb::new().await;
    let served = served_schema(&db);
    let contract = include_str!("../contract/api-contract.graphql");
    let problems = breaking_changes(contract, &served);
    assert!(
        problems.is_empty(),
        "the served schema breaks the contract:\n{}",
        problems.join("\n")
    );
}

/// The shared contract may grow between issues; when it is beside the checkout, hold to it too.
#[tokio::test]
async fn served_schema_keeps_the_shared_contract_when_present() {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/api-contract.graphql");
    let Ok(contract) = std::fs::read_to_string(&shared) else {
        eprintln!(
            "no shared contract at {}; the vendored copy is checked instead",
            shared.display()
        );
        return;
    };
    let db = TestDb::new().await;
    let problems = breaking_changes(&contract, &served_schema(&db));
    assert!(
        problems.is_empty(),
        "the served schema breaks the shared contract:\n{}",
        problems.join("\n")
    );
}
