//! Fuzz target: the AWS JSON 1.0 request decoder for SQS, through
//! `sluice_protocol::decode` (the server's entry).
//!
//! Input: `X-Amz-Target \n body`, sent with `Content-Type: application/x-amz-json-1.0`.
//!
//! Oracle, beyond "no panic":
//! - an error renders as a valid AWS error shape of the detected protocol, with
//!   `x-amzn-query-error` for SQS (`sluice_fuzz::check_error_shape`);
//! - a decoded request's input, serialized back to JSON and decoded again, is the same
//!   input (decode → encode → decode), and it is always an object of model members.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let parts = split_lines(data, 2);
    let decoded = decode(b"/", &[("x-amz-target", parts[0]), ("content-type", b"application/x-amz-json-1.0")], parts[1]);
    let request = match decoded {
        Err(e) => return check_error_shape(&e),
        Ok(r) => r,
    };
    assert!(request.input.is_object());
    let target = String::from_utf8_lossy(parts[0]).trim().to_owned();
    let body = serde_json::to_vec(&request.input).expect("a Value serializes");
    let again = decode(b"/", &[("x-amz-target", target.as_bytes()), ("content-type", b"application/x-amz-json-1.0")], &body)
        .unwrap_or_else(|e| panic!("re-encoded input of {request:?} fails: {e:?}"));
    assert_eq!((again.service, again.protocol, again.operation.as_str()), (request.service, request.protocol, request.operation.as_str()));
    assert_eq!(again.input, request.input, "decode → encode → decode differs");
});
