//! SigV4 credential scopes: which access key, date, region and service a request claims.
//!
//! Routing reads the scope's service to pick a query service when `Version` is absent.
//! Nothing here checks a signature; verification, when sluice does it, belongs in its own
//! module next to this one.

use crate::SigV4Scope;

/// The SigV4 algorithm name that prefixes the `Authorization` header.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

impl SigV4Scope {
    /// Parses a credential string `AKID/YYYYMMDD/region/service/aws4_request`.
    ///
    /// Returns `None` unless all five parts are present and the last is `aws4_request`.
    pub fn parse_credential(credential: &str) -> Option<SigV4Scope> {
        let mut parts = credential.trim().rsplitn(5, '/');
        let terminator = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let date = parts.next()?;
        let access_key = parts.next()?;
        if terminator != "aws4_request"
            || [service, region, date, access_key]
                .iter()
                .any(|p| p.is_empty())
        {
            return None;
        }
        Some(SigV4Scope {
            access_key: access_key.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        })
    }

    /// Parses the scope out of an `Authorization` header:
    /// `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sqs/aws4_request, SignedHeaders=..., Signature=...`.
    pub fn from_authorization(header: &str) -> Option<SigV4Scope> {
        let rest = header.trim_start().strip_prefix(ALGORITHM)?;
        rest.split(',')
            .map(str::trim)
            .find_map(|field| field.strip_prefix("Credential="))
            .and_then(SigV4Scope::parse_credential)
    }
}

#[cfg(test)]
mod tests {
    //! Goal: scopes parse from both places clients put them; anything else yields `None`.

    use super::*;

    #[test]
    fn authorization_header_yields_its_scope() {
        let scope = SigV4Scope::from_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/sqs/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc",
        );
        assert_eq!(
            scope,
            Some(SigV4Scope {
                access_key: "AKIDEXAMPLE".into(),
                date: "20240101".into(),
                region: "us-east-1".into(),
                service: "sqs".into(),
            })
        );
    }

    #[test]
    fn malformed_scopes_yield_none() {
        for header in [
            "",
            "Bearer x",
            "AWS4-HMAC-SHA256 SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sqs",
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sqs/other",
            "AWS4-HMAC-SHA256 Credential=/20240101/us-east-1/sqs/aws4_request",
        ] {
            assert_eq!(SigV4Scope::from_authorization(header), None, "{header}");
        }
    }

    #[test]
    fn presigned_credential_parses() {
        let scope =
            SigV4Scope::parse_credential("AKID/20240101/eu-west-1/sns/aws4_request").unwrap();
        assert_eq!(
            (scope.region.as_str(), scope.service.as_str()),
            ("eu-west-1", "sns")
        );
    }
}
