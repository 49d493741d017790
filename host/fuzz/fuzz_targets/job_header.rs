//! What a gateway or an orchestrator reads from a job's headers and body: the `Livepeer` job header
//! (base64 JSON, its signature recovered), the `Livepeer-Eth-Address` credential, the job's `parameters`
//! and legs, a batch job's route, an orchestrator's capability list, and messages split from a
//! segment. Beside "no panic": a job signed by a key verifies as that key only while the signed
//! message is unchanged, and a batch route that parses never climbs out of its prefix.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use byoc_payment::job::{EthAddressCredential, JobRequest, SignaturePolicy};
use byoc_payment::{Address, SecretKey, Signature};
use byoc_protocol::{BatchPath, JobParameters, OfferedList, StreamLegs};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// A `Livepeer` header value as a client sends it.
    Header(String),
    /// A `Livepeer-Eth-Address` header value.
    Credential(String),
    /// A job signed by a known key, with some fields replaced.
    Tampered { request: Option<String>, parameters: Option<String>, sender: Option<String>, sig: Option<String> },
    /// A signature and message, recovered.
    Recover { sig: String, message: Vec<u8> },
    /// The path of a batch request.
    Batch(String),
    /// A job's `parameters` against a capability's legs.
    Legs { parameters: String, video_in: bool, video_out: bool, data: bool },
    /// An orchestrator's `GET /capabilities` answer, or a message segment.
    Text(String),
}

fn key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| SecretKey::from_bytes(&[7; 32]).expect("a valid key"))
}

fuzz_target!(|input: Input| match input {
    Input::Header(value) => {
        let Ok(job) = JobRequest::from_header(&value) else { return };
        for policy in [SignaturePolicy::Required, SignaturePolicy::AllowUnsigned] {
            if let Ok(Some(sender)) = job.verify(policy) {
                assert_eq!(job.sender.parse::<Address>().ok(), Some(sender), "recovered another sender");
            }
        }
        let _ = (job.issued_at(), job.request_stream_id(), byoc_protocol::check_timeout(&job));
        let _ = JobParameters::parse(&job.parameters);
        assert_eq!(JobRequest::from_header(&job.to_header()).as_ref(), Ok(&job), "header round trip");
        let mut stamped = job.clone();
        if stamped.stamp_issued_at(1_700_000_000_000).is_ok() {
            assert_eq!(stamped.issued_at(), Some(1_700_000_000_000));
        }
    }
    Input::Credential(value) => {
        let Ok(credential) = EthAddressCredential::from_header(&value) else { return };
        if let Ok(addr) = credential.verify(SignaturePolicy::Required) {
            assert_eq!(credential.addr.parse::<Address>().ok(), Some(addr));
        }
        let _ = credential.verify(SignaturePolicy::AllowUnsigned);
        assert_eq!(EthAddressCredential::from_header(&credential.to_header()).as_ref(), Ok(&credential));
    }
    Input::Tampered { request, parameters, sender, sig } => {
        let mut job = JobRequest {
            id: "s1".into(),
            request: r#"{"stream_id":"s1","issued_at":1700000000000}"#.into(),
            parameters: r#"{"enable_video_ingress":true}"#.into(),
            capability: "passthrough".into(),
            timeout_seconds: 30,
            ..Default::default()
        };
        let signed = [job.request.as_str(), job.parameters.as_str()].concat();
        job.sign(key()).expect("signing");
        job.request = request.unwrap_or(job.request);
        job.parameters = parameters.unwrap_or(job.parameters);
        job.sender = sender.unwrap_or(job.sender);
        job.sig = sig.unwrap_or(job.sig);
        let Ok(job) = JobRequest::from_header(&job.to_header()) else { return };
        if let Ok(Some(sender)) = job.verify(SignaturePolicy::Required) {
            if sender == key().address() {
                // The signature covers `request + parameters`, as go-livepeer signs it.
                assert_eq!([job.request.as_str(), job.parameters.as_str()].concat(), signed, "a changed job verified");
            }
        }
    }
    Input::Recover { sig, message } => {
        let Ok(sig) = Signature::from_hex(&sig) else { return };
        if let Ok(addr) = sig.recover(&message) {
            assert!(sig.verify(&message, &addr).is_ok());
        }
    }
    Input::Batch(path) => {
        for parsed in [BatchPath::parse(&path), BatchPath::from_request_path(&path)].into_iter().flatten() {
            let encoded = parsed.encoded();
            assert_eq!(BatchPath::parse(&encoded).as_ref(), Ok(&parsed), "encoded route reads back differently");
            assert!(encoded.split('/').all(|s| !s.is_empty() && s != "." && s != ".."), "route climbs: {encoded}");
            assert!(!encoded.contains(['\\', '?', '#']), "route escapes its segments: {encoded}");
            let _ = parsed.decoded();
        }
    }
    Input::Legs { parameters, video_in, video_out, data } => {
        let legs = StreamLegs { video_in, video_out, data, events: true };
        let _ = JobParameters::parse(&parameters);
        if let Ok(filled) = byoc_protocol::with_default_legs(&parameters, "cap", &legs)
            && let Ok(p) = JobParameters::parse(&filled)
        {
            assert!(!p.enable_video_ingress || video_in, "a leg the capability lacks turned on");
            assert!(!p.enable_video_egress || video_out);
            assert!(!p.enable_data_output || data);
        }
    }
    Input::Text(text) => {
        if let Ok(list) = serde_json::from_str::<OfferedList>(&text) {
            for offered in &list.capabilities {
                let _ = offered.price.cheaper_than(&offered.price);
            }
        }
        let messages = byoc_protocol::messages::messages(&text);
        assert!(messages.iter().all(|m| !m.is_empty() && text.contains(m)));
        let _ = text.parse::<Address>();
        let _ = text.parse::<byoc_payment::Wei>();
    }
});
