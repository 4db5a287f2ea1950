//! Fuzz target: the query/form request decoder, through `sluice_protocol::decode`, the
//! entry the server turns every HTTP request into `(service, operation, input)` with.
//!
//! Input: `path-and-query \n authorization-header \n form-body`. The body is sent as
//! `application/x-www-form-urlencoded`; the URL's parameters and a SigV4 scope in the
//! `Authorization` header take part in routing as they do in the server.
//!
//! Oracle, beyond "no panic":
//! - an error renders as a valid AWS error shape of the detected protocol
//!   (`sluice_fuzz::check_error_shape`);
//! - a decoded request is query protocol, and its input re-encoded with botocore's
//!   query serializer rules (`sluice_fuzz::query_encode`) decodes to the same input
//!   (decode → encode → decode);
//! - for SQS, the same input sent as AWS JSON 1.0 decodes to the same input too
//!   (services see one input shape whatever the protocol).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::{Model, WireProtocol};
use sluice_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let parts = split_lines(data, 3);
    let decoded = decode(parts[0], &[("authorization", parts[1]), ("content-type", FORM.as_bytes())], parts[2]);
    let request = match decoded {
        Err(e) => return check_error_shape(&e),
        Ok(r) => r,
    };
    assert_eq!(request.protocol, WireProtocol::Query);
    assert!(request.input.is_object());
    let model = Model::get(request.service);
    let params = query_encode(model, &request.operation, &request.input);
    let again = decode(b"/", &[("content-type", FORM.as_bytes())], &form_body(&params))
        .unwrap_or_else(|e| panic!("re-encoded {params:?} of {request:?} fails: {e:?}"));
    assert_eq!((again.service, again.operation.as_str()), (request.service, request.operation.as_str()));
    assert_eq!(again.input, request.input, "decode → encode {params:?} → decode differs");
    if request.service == sluice_protocol::ServiceKind::Sqs {
        let body = serde_json::to_vec(&request.input).expect("a Value serializes");
        let json = decode_sqs_json(&request.operation, &body)
            .unwrap_or_else(|e| panic!("query input of {} refused as JSON: {e:?}: {}", request.operation, request.input));
        assert_eq!(json.input, request.input, "JSON decode of the query input differs");
    }
});
