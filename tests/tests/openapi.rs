//! The served OpenAPI document describes exactly the contract's endpoints,
//! and every operation it lists is routed.

use std::collections::BTreeSet;

use devicetrust_e2e::*;

const CONTRACT: &[(&str, &str)] = &[
    ("post", "/v1/login/password"),
    ("post", "/v1/login/enrol"),
    ("post", "/v1/login/otp/send"),
    ("post", "/v1/login/otp/verify"),
    ("post", "/v1/login/device/challenge"),
    ("post", "/v1/login/device"),
    ("post", "/v1/session/refresh"),
    ("post", "/v1/session/logout"),
    ("get", "/v1/me"),
    ("post", "/v1/devices/registration"),
    ("post", "/v1/devices"),
    ("get", "/v1/devices"),
    ("delete", "/v1/devices/{device_id}"),
    ("post", "/admin/v1/users"),
    ("post", "/admin/v1/users/{user_id}/unlock"),
    ("put", "/admin/v1/markets/{market}"),
    ("post", "/admin/v1/cards"),
    ("post", "/admin/v1/cards/{card_ref}/activate"),
    ("post", "/v1/accounts"),
    ("get", "/v1/cards"),
    ("post", "/v1/cards"),
    ("get", "/v1/password-policy"),
    ("post", "/v1/recovery/user-id"),
    ("post", "/v1/recovery/password"),
    ("post", "/v1/recovery/password/complete"),
    ("post", "/v1/account/password"),
    ("post", "/v1/account/contact"),
    ("post", "/v1/account/contact/verify"),
    ("delete", "/v1/account/mobile"),
    ("post", "/v1/account/security-code"),
    ("get", "/v1/account/events"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];

#[tokio::test]
async fn openapi_lists_exactly_the_contract_and_every_operation_is_routed() {
    let srv = TestServer::start().await;
    let doc = srv.get("/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let mut served = BTreeSet::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                served.insert((method.clone(), path.clone()));
            }
        }
    }
    let contract: BTreeSet<_> = CONTRACT
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(served, contract);

    // Each documented operation reaches a handler: never the JSON fallback's
    // "not found"/"method not allowed" for the route itself.
    for (method, path) in &served {
        let url = format!(
            "{}{}",
            srv.base,
            path.replace("{device_id}", "AAAAAAAAAAAAAAAAAAAAAA")
                .replace("{user_id}", "someone")
                .replace("{market}", "GB")
        );
        let req = match method.as_str() {
            "get" => srv.http.get(&url),
            "post" => srv.http.post(&url),
            "put" => srv.http.put(&url),
            "delete" => srv.http.delete(&url),
            _ => unreachable!(),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        assert_ne!(status, 405, "{method} {path}");
        if status == 404 {
            // Only DELETE of an unknown device may be 404, and it needs auth first.
            panic!("{method} {path} fell through to the fallback");
        }
    }

    // Every error body is described by the ErrorBody schema.
    assert!(doc.body["components"]["schemas"]["ErrorBody"].is_object());
    srv.stop().await;
}
