//! `{{name}}` run natively through the SDK's harness: no wasm, no network.

use byoc_sdk::testing::Harness;
use byoc_sdk::{Body, Error, Request};
use {{crate}}::{{type}};

#[test]
fn describe_names_the_plugin() -> Result<(), Error> {
    assert_eq!(Harness::<{{type}}>::new().describe()?.name, "{{name}}");
    Ok(())
}

#[test]
fn a_request_is_answered_in_upper_case_with_a_word_count() -> Result<(), Error> {
    let request = Request::new("/{{name}}", "application/json", br#"{"text": "hello plugin"}"#.to_vec());
    let response = Harness::<{{type}}>::new().process(request)?;
    assert_eq!(response.status, 200);
    let Body::Bytes(body) = response.body else { panic!("expected a JSON body") };
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer, serde_json::json!({"text": "HELLO PLUGIN", "words": 2}));
    Ok(())
}

#[test]
fn a_bad_body_is_an_error_not_a_panic() {
    let request = Request::new("/", "application/json", b"not json".to_vec());
    assert!(Harness::<{{type}}>::new().process(request).is_err());
}
