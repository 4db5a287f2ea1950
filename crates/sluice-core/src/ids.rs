//! Identifiers and names shared by the services: ARNs and request ids.

/// Builds an ARN: `arn:aws:{service}:{region}:{account}:{resource}`.
pub fn arn(service: &str, region: &str, account: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{region}:{account}:{resource}")
}

/// The parts of an ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// e.g. `sqs`.
    pub service: String,
    /// e.g. `us-east-1`.
    pub region: String,
    /// Twelve-digit account id.
    pub account: String,
    /// Everything after the fifth colon.
    pub resource: String,
}

impl Arn {
    /// Parses `arn:aws:service:region:account:resource`; `None` when malformed.
    pub fn parse(s: &str) -> Option<Arn> {
        let mut it = s.splitn(6, ':');
        if it.next()? != "arn" {
            return None;
        }
        let partition = it.next()?;
        if partition.is_empty() {
            return None;
        }
        let service = it.next()?.to_string();
        let region = it.next()?.to_string();
        let account = it.next()?.to_string();
        let resource = it.next()?.to_string();
        if service.is_empty() || resource.is_empty() {
            return None;
        }
        Some(Arn { service, region, account, resource })
    }
}

/// A fresh request id in the UUID form AWS uses.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_round_trips() {
        let a = arn("sqs", "us-east-1", "000000000000", "jobs");
        let p = Arn::parse(&a).unwrap();
        assert_eq!(p.service, "sqs");
        assert_eq!(p.region, "us-east-1");
        assert_eq!(p.account, "000000000000");
        assert_eq!(p.resource, "jobs");
        assert!(Arn::parse("arn:aws:sqs").is_none());
        assert!(Arn::parse("nope:aws:sqs:r:a:q").is_none());
    }
}
