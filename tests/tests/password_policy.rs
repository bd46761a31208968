//! The password policy (contract v1.1): `GET /v1/password-policy`, and
//! `password_rejected` with every broken rule when an administrator sets a
//! password.

use devicetrust_e2e::*;
use devicetrust_server::password_policy::PasswordPolicy;
use serde_json::{json, Value};

async fn create(srv: &TestServer, user_id: &str, password: &str) -> Answer {
    srv.post(
        "/admin/v1/users",
        json!({
            "user_id": user_id,
            "name": "Jane Doe",
            "email": format!("{user_id}@example.com"),
            "primary_market": "GB",
            "password": password,
        }),
        Some(ADMIN_TOKEN),
    )
    .await
}

fn reasons(a: &Answer) -> Vec<String> {
    a.body["error"]["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no reasons in {:?}", a.body))
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

async fn rejected(srv: &TestServer, user_id: &str, password: &str) -> Vec<String> {
    let a = create(srv, user_id, password).await;
    assert_eq!(a.status, 400, "{password}: {:?}", a.body);
    assert_eq!(a.code(), "password_rejected", "{password}: {:?}", a.body);
    reasons(&a)
}

#[tokio::test]
async fn the_policy_endpoint_answers_the_defaults_without_auth() {
    let srv = TestServer::start().await;
    let a = srv.get("/v1/password-policy", None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["min_length"], 8);
    assert_eq!(a.body["max_length"], 128);
    assert_eq!(a.body["classes_required"], 3);
    let description = a.body["description"].as_str().unwrap();
    assert!(description.contains("8 to 128"), "{description}");
    let mut keys: Vec<_> = a.body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "classes_required",
            "description",
            "max_length",
            "min_length"
        ]
    );

    // It is in the OpenAPI document, under "account".
    let doc = srv.get("/openapi.json", None).await;
    let op = &doc.body["paths"]["/v1/password-policy"]["get"];
    assert_eq!(op["tags"], json!(["account"]));
    assert!(op["responses"]["200"].is_object());
    assert!(op["responses"]["429"].is_object());
}

#[tokio::test]
async fn a_common_password_is_refused_whatever_its_case() {
    let srv = TestServer::start().await;
    assert_eq!(rejected(&srv, "jane.doe", "Password1").await, ["common"]);
    assert_eq!(rejected(&srv, "jane.doe", "pAsSwOrD1").await, ["common"]);
    // Upper case and digits only: two classes.
    for password in ["PASSWORD1", "ＰＡＳＳＷＯＲＤ１"] {
        assert_eq!(
            rejected(&srv, "jane.doe", password).await,
            ["too_few_classes", "common"]
        );
    }
}

#[tokio::test]
async fn every_broken_rule_is_reported() {
    let srv = TestServer::start().await;
    assert_eq!(
        rejected(&srv, "jane.doe", "short").await,
        ["too_short", "too_few_classes"]
    );
    assert_eq!(
        rejected(&srv, "jane.doe", "qwerty").await,
        ["too_short", "too_few_classes", "common"]
    );
    assert_eq!(
        rejected(&srv, "jane.doe", "correct horse battery").await,
        ["too_few_classes"]
    );
    assert_eq!(
        rejected(&srv, "jane.doe", &"a".repeat(129)).await,
        ["too_long", "too_few_classes"]
    );
    assert_eq!(
        rejected(&srv, "jane.doe", "jane.doe").await,
        ["too_few_classes", "contains_user_id"]
    );
    let a = create(&srv, "jane.doe", "short").await;
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("policy"));
}

#[tokio::test]
async fn a_password_containing_the_user_id_is_refused() {
    let srv = TestServer::start().await;
    assert_eq!(
        rejected(&srv, "jane.doe", "Hello Jane.Doe 42").await,
        ["contains_user_id"]
    );
    // The id is compared lower-cased, and after NFKC.
    assert_eq!(
        rejected(&srv, "Mike", "My name is ＭＩＫＥ 7").await,
        ["contains_user_id"]
    );
    // Ids of fewer than three characters are not looked for.
    assert_eq!(create(&srv, "jo", "Jo is 42 today").await.status, 201);
}

#[tokio::test]
async fn a_good_password_is_accepted_and_signs_in() {
    let srv = TestServer::start().await;
    let refused = create(&srv, "jane.doe", "Password1").await;
    assert_eq!(refused.status, 400);
    // Nothing was stored: the same id can be created right after.
    let a = create(&srv, "jane.doe", PASSWORD).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let signed = srv.password("jane.doe", PASSWORD, None).await;
    assert_eq!(signed.status, 200, "{:?}", signed.body);
}

#[tokio::test]
async fn the_stored_hash_is_of_the_nfkc_form() {
    let srv = TestServer::start().await;
    // Full-width C and the ligature ﬁ: "Correct horse fish 9" after NFKC.
    let a = create(&srv, "jane.doe", "Ｃorrect horse ﬁsh 9").await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let signed = srv.password("jane.doe", "Correct horse fish 9", None).await;
    assert_eq!(signed.status, 200, "{:?}", signed.body);
}

#[tokio::test]
async fn sign_in_verifies_the_nfkc_form_of_what_is_typed() {
    let srv = TestServer::start().await;
    let a = create(&srv, "jane.doe", "Correct horse fish 9").await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let signed = srv.password("jane.doe", "Ｃorrect horse ﬁsh 9", None).await;
    assert_eq!(signed.status, 200, "{:?}", signed.body);
}

#[tokio::test]
async fn operators_set_the_limits() {
    let mut opts = Options::default();
    opts.settings.password_policy = PasswordPolicy {
        min_length: 12,
        max_length: 20,
        classes_required: 4,
    };
    let srv = TestServer::start_with(opts).await;
    let a = srv.get("/v1/password-policy", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        (
            &a.body["min_length"],
            &a.body["max_length"],
            &a.body["classes_required"]
        ),
        (&Value::from(12), &Value::from(20), &Value::from(4))
    );
    assert_eq!(
        rejected(&srv, "jane.doe", "Abc def 12").await,
        ["too_short"]
    );
    assert_eq!(
        rejected(&srv, "jane.doe", "Abcdefghij123456789x").await,
        ["too_few_classes"]
    );
    assert_eq!(
        rejected(&srv, "jane.doe", "Abc def ghi jkl 123456").await,
        ["too_long"]
    );
    assert_eq!(
        create(&srv, "jane.doe", "Abc def ghi 1234").await.status,
        201
    );
}
