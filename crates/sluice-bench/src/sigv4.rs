//! SigV4 request signing for the load generator's requests.
//!
//! The bench only ever signs `POST /` with a body and no query string, but the canonical form
//! below is the general one (sorted query, lowercased sorted headers) so it can be checked
//! against the AWS SigV4 test suite. Verifying signatures is the server's business and lives
//! elsewhere; nothing here parses an `Authorization` header.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = hmac::Hmac<Sha256>;

/// The algorithm name that starts the `Authorization` header and the string to sign.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Static credentials and the scope every request is signed for.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Access key id (`AKID` in AWS's examples).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region of the scope, e.g. `us-east-1`.
    pub region: String,
    /// Signing name of the service, e.g. `sqs`.
    pub service: String,
}

/// Signs requests, caching the derived signing key for the current date.
///
/// Deriving the key costs four HMACs; it changes once a day, so one cache slot is enough.
#[derive(Debug)]
pub struct Signer {
    credentials: Credentials,
    cached_key: Mutex<Option<(String, [u8; 32])>>,
}

/// The headers a signed request must carry, computed by [`Signer::sign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Value of `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`).
    pub amz_date: String,
    /// Value of `Authorization`.
    pub authorization: String,
    /// The hex signature alone (also inside `authorization`).
    pub signature: String,
}

impl Signer {
    /// A signer for these credentials.
    pub fn new(credentials: Credentials) -> Self {
        Self { credentials, cached_key: Mutex::new(None) }
    }

    /// Signs a request made now.
    ///
    /// `headers` are the (name, value) pairs to sign, `host` among them; `x-amz-date` is added
    /// here. `query` is the raw query string (possibly empty).
    pub fn sign_now(&self, method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Signature {
        self.sign(SystemTime::now(), method, path, query, headers, body)
    }

    /// Signs a request made at `when`; see [`Signer::sign_now`].
    pub fn sign(
        &self,
        when: SystemTime,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Signature {
        let amz_date = amz_date(when);
        let date = &amz_date[..8];
        let payload_hash = hex::encode(Sha256::digest(body));

        let mut canonical_headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), canonical_header_value(v)))
            .chain(std::iter::once(("x-amz-date".to_owned(), amz_date.clone())))
            .collect();
        canonical_headers.sort();
        // Repeated names fold into one line with comma-joined values (the test suite's
        // get-header-key-duplicate case); the bench never repeats one, but stay general.
        let mut folded: Vec<(String, String)> = Vec::with_capacity(canonical_headers.len());
        for (name, value) in canonical_headers {
            match folded.last_mut() {
                Some((last, joined)) if *last == name => {
                    joined.push(',');
                    joined.push_str(&value);
                }
                _ => folded.push((name, value)),
            }
        }
        let signed_headers = folded.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");

        let mut canonical = String::with_capacity(256);
        canonical.push_str(method);
        canonical.push('\n');
        canonical.push_str(path);
        canonical.push('\n');
        canonical.push_str(&canonical_query(query));
        canonical.push('\n');
        for (name, value) in &folded {
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(value);
            canonical.push('\n');
        }
        canonical.push('\n');
        canonical.push_str(&signed_headers);
        canonical.push('\n');
        canonical.push_str(&payload_hash);

        let c = &self.credentials;
        let scope = format!("{date}/{}/{}/aws4_request", c.region, c.service);
        let string_to_sign =
            format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
        let key = self.signing_key(date);
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            c.access_key_id
        );
        Signature { amz_date, authorization, signature }
    }

    fn signing_key(&self, date: &str) -> [u8; 32] {
        let mut cache = self.cached_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((d, key)) = cache.as_ref() {
            if d == date {
                return *key;
            }
        }
        let c = &self.credentials;
        let k_date = hmac(format!("AWS4{}", c.secret_access_key).as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, c.region.as_bytes());
        let k_service = hmac(&k_region, c.service.as_bytes());
        let key = hmac(&k_service, b"aws4_request");
        *cache = Some((date.to_owned(), key));
        key
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// Trims a header value and collapses inner runs of spaces, as the canonical form requires.
fn canonical_header_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for word in v.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Sorts `name=value` pairs by name, then value; keeps their (already encoded) spelling.
fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(&str, &str)> =
        query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Formats `when` as SigV4's basic ISO 8601 UTC timestamp, `YYYYMMDDTHHMMSSZ`.
pub fn amz_date(when: SystemTime) -> String {
    let secs = when.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    //! Goal: signatures match AWS's published SigV4 test suite (`aws-sig-v4-test-suite`:
    //! get-vanilla, get-vanilla-query-order-key-case, post-x-www-form-urlencoded), and the
    //! timestamp formatting matches known dates.
    //! Method: sign the suite's requests at its fixed time with its example credentials.

    use super::*;
    use std::time::Duration;

    fn suite_signer() -> Signer {
        Signer::new(Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            region: "us-east-1".into(),
            service: "service".into(),
        })
    }

    /// 2015-08-30T12:36:00Z, the time of every request in the suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    #[test]
    fn get_vanilla_matches_the_aws_test_suite() {
        let s = suite_signer().sign(suite_time(), "GET", "/", "", &[("Host", "example.amazonaws.com")], b"");
        assert_eq!(s.amz_date, "20150830T123600Z");
        assert_eq!(
            s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn get_vanilla_query_order_key_case_sorts_the_query() {
        let s = suite_signer().sign(
            suite_time(),
            "GET",
            "/",
            "Param2=value2&Param1=value1",
            &[("Host", "example.amazonaws.com")],
            b"",
        );
        assert_eq!(s.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    }

    #[test]
    fn post_x_www_form_urlencoded_signs_content_type_and_body() {
        let s = suite_signer().sign(
            suite_time(),
            "POST",
            "/",
            "",
            &[("Content-Type", "application/x-www-form-urlencoded"), ("Host", "example.amazonaws.com")],
            b"Param1=value1",
        );
        assert!(s.authorization.contains("SignedHeaders=content-type;host;x-amz-date,"), "{}", s.authorization);
        assert_eq!(s.signature, "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    }

    #[test]
    fn signing_key_cache_gives_the_same_signature_twice() {
        let signer = suite_signer();
        let a = signer.sign(suite_time(), "GET", "/", "", &[("Host", "example.amazonaws.com")], b"");
        let b = signer.sign(suite_time(), "GET", "/", "", &[("Host", "example.amazonaws.com")], b"");
        assert_eq!(a, b);
    }

    #[test]
    fn amz_date_formats_leap_days_and_year_ends() {
        let at = |secs: u64| amz_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_735_689_599), "20241231T235959Z");
        assert_eq!(at(4_107_542_400), "21000301T000000Z");
    }
}
