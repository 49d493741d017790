//! The `Livepeer` job header and the `Livepeer-Eth-Address` credential, as go-livepeer encodes
//! them: standard base64 (with padding) of JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::key::{SecretKey, Signature, SignatureError};

/// Why a job header or credential was refused. Each is a 4xx for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum JobError {
    #[error("header is not base64")]
    Base64,
    #[error("header is not valid JSON: {0}")]
    Json(String),
    #[error("no timeout_seconds set with request, timeout_seconds is required")]
    NoTimeout,
    #[error("job is not signed (unsigned jobs are not allowed here)")]
    Unsigned,
    #[error("sender is not an address: {0}")]
    Sender(String),
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("request must be a JSON object")]
    RequestNotObject,
}

/// A BYOC job request (`Livepeer` header). Field names are the wire names; unknown fields
/// (go-livepeer also serialises `OrchSearchTimeout`, `OrchSearchRespTimeout`) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The job id the sender chose (a stream id for stream jobs).
    #[serde(default)]
    pub id: String,
    /// A JSON object encoded as a string.
    #[serde(default)]
    pub request: String,
    /// A JSON object encoded as a string (orchestrator selection, enabled legs).
    #[serde(default)]
    pub parameters: String,
    /// The capability the job is for.
    #[serde(default)]
    pub capability: String,
    /// Where the sender asks the orchestrator to reach the capability (external workers).
    #[serde(default)]
    pub capability_url: String,
    /// The sender's Ethereum address, `0x`-prefixed hex.
    #[serde(default)]
    pub sender: String,
    /// The sender's signature over `request` + `parameters`, `0x`-prefixed hex.
    #[serde(default)]
    pub sig: String,
    /// How long the job may run, in seconds.
    #[serde(default)]
    pub timeout_seconds: i64,
}

/// Whether jobs without a signature are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// Every job must be signed by its sender.
    Required,
    /// Free mode: a job with no signature (`""` or `"0x"`, as go-livepeer's offchain gateways
    /// send) is accepted as anonymous; a job that carries a signature must still verify.
    AllowUnsigned,
}

impl JobRequest {
    /// The message go-livepeer signs: `request + parameters`.
    fn signed_message(&self) -> Vec<u8> {
        [self.request.as_bytes(), self.parameters.as_bytes()].concat()
    }

    /// Sets `sender` and `sig`.
    pub fn sign(&mut self, key: &SecretKey) -> Result<(), JobError> {
        self.sender = key.address().to_checksum();
        self.sig = key.sign(&self.signed_message())?.to_hex();
        Ok(())
    }

    /// Checks the signature. `Ok(Some(sender))` for a signed job, `Ok(None)` for an unsigned
    /// one that `policy` allows.
    pub fn verify(&self, policy: SignaturePolicy) -> Result<Option<Address>, JobError> {
        let unsigned = self.sig.is_empty() || self.sig == "0x";
        if unsigned {
            return match policy {
                SignaturePolicy::AllowUnsigned => Ok(None),
                SignaturePolicy::Required => Err(JobError::Unsigned),
            };
        }
        let sender: Address = self.sender.parse().map_err(|e| JobError::Sender(format!("{e}")))?;
        Signature::from_hex(&self.sig)?.verify(&self.signed_message(), &sender)?;
        Ok(Some(sender))
    }

    /// Writes `issued_at` (ms since the Unix epoch) into `request`, which must be a JSON object (an
    /// empty one is taken as `{}`). Sign after: the stamp is then covered by the signature, and an
    /// orchestrator can refuse a stale or replayed job.
    pub fn stamp_issued_at(&mut self, now_ms: u64) -> Result<(), JobError> {
        let text = if self.request.trim().is_empty() { "{}" } else { self.request.as_str() };
        let mut v: serde_json::Value = serde_json::from_str(text).map_err(|_| JobError::RequestNotObject)?;
        let obj = v.as_object_mut().ok_or(JobError::RequestNotObject)?;
        obj.insert("issued_at".into(), now_ms.into());
        self.request = v.to_string();
        Ok(())
    }

    /// The `issued_at` stamp of `request`, if it carries one.
    pub fn issued_at(&self) -> Option<u64> {
        serde_json::from_str::<serde_json::Value>(&self.request).ok()?.get("issued_at")?.as_u64()
    }

    /// The `stream_id` `request` names, if any.
    pub fn request_stream_id(&self) -> Option<String> {
        let v = serde_json::from_str::<serde_json::Value>(&self.request).ok()?;
        v.get("stream_id")?.as_str().filter(|s| !s.is_empty()).map(str::to_string)
    }

    /// Encodes as the `Livepeer` header value.
    pub fn to_header(&self) -> String {
        B64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a `Livepeer` header value; `timeout_seconds` must be set.
    pub fn from_header(value: &str) -> Result<Self, JobError> {
        let raw = B64.decode(value.trim()).map_err(|_| JobError::Base64)?;
        let job: JobRequest = serde_json::from_slice(&raw).map_err(|e| JobError::Json(e.to_string()))?;
        if job.timeout_seconds == 0 {
            return Err(JobError::NoTimeout);
        }
        Ok(job)
    }
}

/// The `Livepeer-Eth-Address` credential: the sender's address and its signature of the
/// address string itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthAddressCredential {
    /// The sender's address, `0x`-prefixed hex.
    pub addr: String,
    /// The sender's signature of `addr`, `0x`-prefixed hex.
    pub sig: String,
}

impl EthAddressCredential {
    /// The credential for `key` (checksummed address, signed as text).
    pub fn new(key: &SecretKey) -> Result<Self, JobError> {
        let addr = key.address().to_checksum();
        let sig = key.sign(addr.as_bytes())?.to_hex();
        Ok(EthAddressCredential { addr, sig })
    }

    /// Encodes as the header value.
    pub fn to_header(&self) -> String {
        B64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a header value (without verifying it).
    pub fn from_header(value: &str) -> Result<Self, JobError> {
        let raw = B64.decode(value.trim()).map_err(|_| JobError::Base64)?;
        serde_json::from_slice(&raw).map_err(|e| JobError::Json(e.to_string()))
    }

    /// Checks that the signature is by the address (or, when `policy` allows, that there is none).
    pub fn verify(&self, policy: SignaturePolicy) -> Result<Address, JobError> {
        let addr: Address = self.addr.parse().map_err(|e| JobError::Sender(format!("{e}")))?;
        if (self.sig.is_empty() || self.sig == "0x") && policy == SignaturePolicy::AllowUnsigned {
            return Ok(addr);
        }
        Signature::from_hex(&self.sig)?.verify(self.addr.as_bytes(), &addr)?;
        Ok(addr)
    }

    /// Decodes and verifies a header value, returning the address.
    pub fn verify_header(value: &str, policy: SignaturePolicy) -> Result<Address, JobError> {
        Self::from_header(value)?.verify(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobRequest {
        JobRequest {
            id: "s1".into(),
            request: r#"{"stream_id":"s1"}"#.into(),
            parameters: r#"{"enable_video_ingress":true}"#.into(),
            capability: "passthrough".into(),
            timeout_seconds: 30,
            ..Default::default()
        }
    }

    #[test]
    fn signed_job_round_trips_through_the_header() {
        let key = SecretKey::generate();
        let mut j = job();
        j.sign(&key).unwrap();
        let back = JobRequest::from_header(&j.to_header()).unwrap();
        assert_eq!(back, j);
        assert_eq!(back.verify(SignaturePolicy::Required).unwrap(), Some(key.address()));
        // The signature covers request + parameters; tampering is caught.
        let mut tampered = back.clone();
        tampered.parameters = "{}".into();
        assert!(matches!(tampered.verify(SignaturePolicy::AllowUnsigned), Err(JobError::Signature(_))));
    }

    #[test]
    fn the_issued_at_stamp_is_signed() {
        let key = SecretKey::generate();
        let mut j = job();
        j.request = r#"{"stream_id":"s"}"#.into();
        j.stamp_issued_at(1_700_000_000_000).unwrap();
        assert_eq!(j.issued_at(), Some(1_700_000_000_000));
        assert_eq!(j.request_stream_id().as_deref(), Some("s"));
        j.sign(&key).unwrap();
        let mut older = j.clone();
        older.request = older.request.replace("1700000000000", "1600000000000");
        assert!(older.verify(SignaturePolicy::Required).is_err(), "the stamp cannot be changed");
        let mut not_object = job();
        not_object.request = "[1]".into();
        assert_eq!(not_object.stamp_issued_at(1), Err(JobError::RequestNotObject));
    }

    #[test]
    fn unsigned_jobs_only_in_free_mode() {
        let mut j = job();
        j.sig = "0x".into();
        assert_eq!(j.verify(SignaturePolicy::AllowUnsigned), Ok(None));
        assert_eq!(j.verify(SignaturePolicy::Required), Err(JobError::Unsigned));
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(JobRequest::from_header("***"), Err(JobError::Base64));
        assert!(matches!(JobRequest::from_header(&B64.encode("[1]")), Err(JobError::Json(_))));
        assert_eq!(JobRequest::from_header(&B64.encode(r#"{"request":"{}"}"#)), Err(JobError::NoTimeout));
        let extra = B64.encode(r#"{"timeout_seconds":5,"OrchSearchTimeout":1000}"#);
        assert_eq!(JobRequest::from_header(&extra).unwrap().timeout_seconds, 5);
        let mut bad_sender = job();
        bad_sender.sig = format!("0x{}", "00".repeat(65));
        bad_sender.sender = "nope".into();
        assert!(matches!(bad_sender.verify(SignaturePolicy::Required), Err(JobError::Sender(_))));
    }

    #[test]
    fn eth_address_credential() {
        let key = SecretKey::generate();
        let h = EthAddressCredential::new(&key).unwrap().to_header();
        assert_eq!(EthAddressCredential::verify_header(&h, SignaturePolicy::Required).unwrap(), key.address());
        let other = SecretKey::generate();
        let forged = EthAddressCredential {
            addr: key.address().to_checksum(),
            sig: EthAddressCredential::new(&other).unwrap().sig,
        };
        assert!(EthAddressCredential::verify_header(&forged.to_header(), SignaturePolicy::Required).is_err());
    }
}
