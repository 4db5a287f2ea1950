//! STS GetCallerIdentity: tooling calls it first to learn the account.

use crate::ServerError;
use serde_json::{json, Value};
use sluice_sqs::RequestContext;

pub(crate) fn dispatch(operation: &str, ctx: &RequestContext) -> Result<Value, ServerError> {
    match operation {
        "GetCallerIdentity" => {
            let user = ctx.access_key.clone().unwrap_or_else(|| "sluice".to_string());
            Ok(json!({
                "UserId": user,
                "Account": ctx.account,
                "Arn": format!("arn:aws:iam::{}:root", ctx.account),
            }))
        }
        other => Err(ServerError {
            code: "InvalidAction",
            status: 400,
            message: format!("The action {other} is not valid for this endpoint."),
        }),
    }
}
