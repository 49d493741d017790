//! The protobuf messages of the `Livepeer-Payment` header (go-livepeer `net/lp_rpc.proto`: `Payment`,
//! `TicketParams`, `TicketSenderParams`, `TicketExpirationParams`, `PriceInfo`), field for field, and those
//! of orchestrator info and segment credentials (`OrchestratorRequest`, `OrchestratorInfo`, `AuthToken`,
//! `SegData`, `Capabilities`): the fields byoc reads or writes; others are skipped when decoding.
//!
//! The header is standard base64 of a serialized [`Payment`]. These are wire types: checks of meaning
//! (lengths, ranges, signatures) happen when they are turned into [`crate::TicketParams`] or received by a
//! [`crate::Recipient`]. `TicketParams`, `TicketExpirationParams` and `PriceInfo` also carry go-livepeer's
//! JSON form (as in a job token): byte fields as standard base64, zero and empty fields omitted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use prost::Message as _;

/// The largest `Livepeer-Payment` header accepted, in characters of base64. 600 tickets take ~60 KiB.
pub const MAX_PAYMENT_HEADER: usize = 256 * 1024;

/// Why a `Livepeer-Payment` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum HeaderError {
    #[error("payment header is {0} bytes, more than the {MAX_PAYMENT_HEADER} allowed")]
    TooLarge(usize),
    #[error("payment header is not standard base64: {0}")]
    Base64(String),
    #[error("payment header is not a protobuf Payment: {0}")]
    Protobuf(String),
}

/// `net.Payment`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payment {
    /// Probabilistic micropayment ticket parameters, the same for every ticket of the payment.
    #[prost(message, optional, tag = "1")]
    pub ticket_params: Option<TicketParams>,
    /// The sender's 20-byte address.
    #[prost(bytes = "vec", tag = "2")]
    pub sender: Vec<u8>,
    /// The expiration params the tickets were made with (these, not `ticket_params.expiration_params`,
    /// are what go-livepeer hashes).
    #[prost(message, optional, tag = "3")]
    pub expiration_params: Option<TicketExpirationParams>,
    /// One entry per ticket.
    #[prost(message, repeated, tag = "4")]
    pub ticket_sender_params: Vec<TicketSenderParams>,
    /// The price the sender expects (the orchestrator's last known price).
    #[prost(message, optional, tag = "5")]
    pub expected_price: Option<PriceInfo>,
}

impl Payment {
    /// Decodes a `Livepeer-Payment` header value: size-limited, standard base64, then protobuf.
    pub fn from_header(value: &str) -> Result<Payment, HeaderError> {
        let value = value.trim();
        if value.len() > MAX_PAYMENT_HEADER {
            return Err(HeaderError::TooLarge(value.len()));
        }
        let bytes = STANDARD.decode(value).map_err(|e| HeaderError::Base64(e.to_string()))?;
        Payment::decode(bytes.as_slice()).map_err(|e| HeaderError::Protobuf(e.to_string()))
    }

    /// Encodes as a `Livepeer-Payment` header value.
    pub fn to_header(&self) -> String {
        STANDARD.encode(self.encode_to_vec())
    }
}

/// `net.TicketParams`.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
pub struct TicketParams {
    /// The recipient's address, 20 bytes.
    #[prost(bytes = "vec", tag = "1")]
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub recipient: Vec<u8>,
    /// The face value in wei, big-endian.
    #[prost(bytes = "vec", tag = "2")]
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub face_value: Vec<u8>,
    /// The winning probability out of 2^256, big-endian.
    #[prost(bytes = "vec", tag = "3")]
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub win_prob: Vec<u8>,
    /// keccak256 of the recipient's secret random number.
    #[prost(bytes = "vec", tag = "4")]
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub recipient_rand_hash: Vec<u8>,
    /// The recipient's seed that identifies its secret (it signs it into the params).
    #[prost(bytes = "vec", tag = "5")]
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub seed: Vec<u8>,
    /// The block after which tickets with these params no longer win, big-endian.
    #[prost(bytes = "vec", tag = "6")]
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub expiration_block: Vec<u8>,
    /// When the params were made: the creation round and its block hash.
    #[prost(message, optional, tag = "7")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_params: Option<TicketExpirationParams>,
}

/// `net.TicketSenderParams`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TicketSenderParams {
    /// The sender's nonce for this ticket, unique per recipient random hash.
    #[prost(uint32, tag = "1")]
    pub sender_nonce: u32,
    /// The sender's signature of the ticket hash, 65 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub sig: Vec<u8>,
}

/// `net.TicketExpirationParams`.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
pub struct TicketExpirationParams {
    /// The round the params were made in.
    #[prost(int64, tag = "1")]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub creation_round: i64,
    /// The hash of that round's first block.
    #[prost(bytes = "vec", tag = "2")]
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub creation_round_block_hash: Vec<u8>,
}

/// `net.PriceInfo`.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
pub struct PriceInfo {
    /// The price per `pixels_per_unit` units of work, in wei.
    #[prost(int64, tag = "1")]
    #[serde(rename = "pricePerUnit", default, skip_serializing_if = "is_zero")]
    pub price_per_unit: i64,
    /// How many units the price is for.
    #[prost(int64, tag = "2")]
    #[serde(rename = "pixelsPerUnit", default, skip_serializing_if = "is_zero")]
    pub pixels_per_unit: i64,
    /// The capability the price is for (0 for the general price).
    #[prost(uint32, tag = "3")]
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub capability: u32,
    /// A capability's constraint the price is for (e.g. a model id); empty for any.
    #[prost(string, tag = "4")]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub constraint: String,
}

/// The capability number go-livepeer gives BYOC in `capabilities_prices` (the capability's name is the
/// price's `constraint`).
pub const CAPABILITY_BYOC: u32 = 37;

/// `net.OrchestratorRequest`: what a sender sends to `net.Orchestrator/GetOrchestrator`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OrchestratorRequest {
    /// The sender's 20-byte address.
    #[prost(bytes = "vec", tag = "1")]
    pub address: Vec<u8>,
    /// The sender's signature of its checksummed address as text (as the `Livepeer-Eth-Address`
    /// credential's), 65 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub sig: Vec<u8>,
    /// What the sender needs (unused by BYOC).
    #[prost(message, optional, tag = "3")]
    pub capabilities: Option<Capabilities>,
    /// Answer even without free capacity.
    #[prost(bool, tag = "4")]
    pub ignore_capacity_check: bool,
}

/// `net.OrchestratorInfo`: the answer of `GetOrchestrator`, and what a remote signer is given to make a
/// payment.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OrchestratorInfo {
    /// The orchestrator's service URI.
    #[prost(string, tag = "1")]
    pub transcoder: String,
    /// Fresh ticket params for the requesting sender.
    #[prost(message, optional, tag = "2")]
    pub ticket_params: Option<TicketParams>,
    /// The price the ticket params were made for.
    #[prost(message, optional, tag = "3")]
    pub price_info: Option<PriceInfo>,
    /// The orchestrator's 20-byte address.
    #[prost(bytes = "vec", tag = "4")]
    pub address: Vec<u8>,
    /// What the orchestrator offers.
    #[prost(message, optional, tag = "5")]
    pub capabilities: Option<Capabilities>,
    /// The session token a sender puts in its segment credentials.
    #[prost(message, optional, tag = "6")]
    pub auth_token: Option<AuthToken>,
    /// One price per capability; BYOC capabilities as [`CAPABILITY_BYOC`] with the name as constraint.
    #[prost(message, repeated, tag = "33")]
    pub capabilities_prices: Vec<PriceInfo>,
    /// Other node URIs of this orchestrator.
    #[prost(string, repeated, tag = "34")]
    pub nodes: Vec<String>,
}

impl OrchestratorInfo {
    /// The price of BYOC capability `name` in `capabilities_prices`, if listed.
    pub fn byoc_price(&self, name: &str) -> Option<&PriceInfo> {
        self.capabilities_prices.iter().find(|p| p.capability == CAPABILITY_BYOC && p.constraint == name)
    }
}

/// `net.AuthToken`: an orchestrator's session token (see [`crate::segcreds::auth_token`]).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AuthToken {
    /// HMAC-SHA256 over `session_id` and `expiration` under the orchestrator's secret.
    #[prost(bytes = "vec", tag = "1")]
    pub token: Vec<u8>,
    /// The session the token is for.
    #[prost(string, tag = "2")]
    pub session_id: String,
    /// Unix seconds after which the token is refused.
    #[prost(int64, tag = "3")]
    pub expiration: i64,
}

/// `net.SegData`: segment credentials (`Livepeer-Segment`), the fields byoc uses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SegData {
    /// The manifest (session) the segment belongs to.
    #[prost(bytes = "vec", tag = "1")]
    pub manifest_id: Vec<u8>,
    /// The segment's sequence number.
    #[prost(int64, tag = "2")]
    pub seq: i64,
    /// keccak256 of the segment's data.
    #[prost(bytes = "vec", tag = "3")]
    pub hash: Vec<u8>,
    /// Transcoding profiles, hex text (empty for BYOC).
    #[prost(bytes = "vec", tag = "4")]
    pub profiles: Vec<u8>,
    /// The sender's signature of the flattened fields (see [`crate::segcreds`]).
    #[prost(bytes = "vec", tag = "5")]
    pub sig: Vec<u8>,
    /// Duration in milliseconds.
    #[prost(int32, tag = "6")]
    pub duration: i32,
    /// The capabilities the segment needs.
    #[prost(message, optional, tag = "7")]
    pub capabilities: Option<Capabilities>,
    /// The orchestrator's session token.
    #[prost(message, optional, tag = "8")]
    pub auth_token: Option<AuthToken>,
}

/// `net.Capabilities`, without the per-capability constraints (skipped when decoding).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Capabilities {
    /// One bit per capability offered.
    #[prost(uint64, repeated, tag = "1")]
    pub bitstring: Vec<u64>,
    /// One bit per capability required.
    #[prost(uint64, repeated, tag = "2")]
    pub mandatories: Vec<u64>,
    /// Capacity per capability number.
    #[prost(map = "uint32, uint32", tag = "3")]
    pub capacities: std::collections::HashMap<u32, u32>,
    /// The node's version.
    #[prost(string, tag = "4")]
    pub version: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Go's JSON form of `[]byte`: standard base64.
mod b64 {
    use super::STANDARD;
    use base64::Engine as _;

    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: Option<String> = serde::Deserialize::deserialize(d)?;
        match s {
            None => Ok(Vec::new()),
            Some(s) => STANDARD.decode(s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let p = Payment {
            ticket_params: Some(TicketParams { recipient: vec![1; 20], seed: vec![7], ..Default::default() }),
            sender: vec![2; 20],
            expiration_params: Some(TicketExpirationParams {
                creation_round: 5,
                creation_round_block_hash: vec![3; 32],
            }),
            ticket_sender_params: vec![TicketSenderParams { sender_nonce: 1, sig: vec![4; 65] }],
            expected_price: Some(PriceInfo { price_per_unit: 10, pixels_per_unit: 1, ..Default::default() }),
        };
        assert_eq!(Payment::from_header(&p.to_header()).unwrap(), p);
    }

    #[test]
    fn field_numbers_match_lp_rpc_proto() {
        // sender (field 2, wire type 2): tag byte 0x12; sender_nonce (field 1, varint) inside field 4 (0x22).
        let p = Payment { sender: vec![0xaa], ..Default::default() };
        assert_eq!(p.encode_to_vec(), vec![0x12, 1, 0xaa]);
        let p = Payment {
            ticket_sender_params: vec![TicketSenderParams { sender_nonce: 3, sig: vec![] }],
            ..Default::default()
        };
        assert_eq!(p.encode_to_vec(), vec![0x22, 2, 0x08, 3]);
        let p = Payment {
            expected_price: Some(PriceInfo { pixels_per_unit: 1, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(p.encode_to_vec(), vec![0x2a, 2, 0x10, 1]);
        let t = TicketParams {
            expiration_params: Some(TicketExpirationParams { creation_round: 1, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(t.encode_to_vec(), vec![0x3a, 2, 0x08, 1]);
    }

    #[test]
    fn orchestrator_messages_use_lp_rpc_field_numbers() {
        // capabilities_prices is field 33 (tag 0x8a 0x02), auth_token 6 (0x32), address 4 (0x22).
        let info = OrchestratorInfo {
            capabilities_prices: vec![PriceInfo { capability: CAPABILITY_BYOC, ..Default::default() }],
            ..Default::default()
        };
        assert_eq!(info.encode_to_vec(), vec![0x8a, 0x02, 2, 0x18, 37]);
        let info = OrchestratorInfo { address: vec![9], ..Default::default() };
        assert_eq!(info.encode_to_vec(), vec![0x22, 1, 9]);
        let req = OrchestratorRequest { ignore_capacity_check: true, sig: vec![1], ..Default::default() };
        assert_eq!(req.encode_to_vec(), vec![0x12, 1, 1, 0x20, 1]);
        let seg = SegData {
            auth_token: Some(AuthToken { expiration: 2, ..Default::default() }),
            seq: 1,
            ..Default::default()
        };
        assert_eq!(seg.encode_to_vec(), vec![0x10, 1, 0x42, 2, 0x18, 2]);
        let byoc = OrchestratorInfo {
            capabilities_prices: vec![
                PriceInfo { capability: 1, constraint: "echo".into(), ..Default::default() },
                PriceInfo {
                    capability: CAPABILITY_BYOC,
                    constraint: "echo".into(),
                    price_per_unit: 3,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(byoc.byoc_price("echo").map(|p| p.price_per_unit), Some(3));
        assert!(byoc.byoc_price("other").is_none());
    }

    #[test]
    fn malformed_headers_are_clear_errors() {
        assert!(matches!(Payment::from_header("not base64!"), Err(HeaderError::Base64(_))));
        // 0x0a = field 1, length-delimited, then a length running past the end.
        let truncated = STANDARD.encode([0x0a, 0x20, 0x01]);
        assert!(matches!(Payment::from_header(&truncated), Err(HeaderError::Protobuf(_))));
        let huge = "A".repeat(MAX_PAYMENT_HEADER + 4);
        assert_eq!(Payment::from_header(&huge), Err(HeaderError::TooLarge(MAX_PAYMENT_HEADER + 4)));
        assert_eq!(Payment::from_header("").unwrap(), Payment::default());
    }

    #[test]
    fn ticket_params_json_is_go_livepeers() {
        let t = TicketParams {
            recipient: vec![0xff; 20],
            face_value: vec![1, 0],
            expiration_params: Some(TicketExpirationParams {
                creation_round: 7,
                creation_round_block_hash: vec![0; 32],
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["recipient"], "//////////////////////////8=");
        assert_eq!(v["face_value"], "AQA=");
        assert!(v.get("win_prob").is_none());
        assert_eq!(v["expiration_params"]["creation_round"], 7);
        let back: TicketParams = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
        let p: PriceInfo = serde_json::from_str(r#"{"pricePerUnit":5,"pixelsPerUnit":1}"#).unwrap();
        assert_eq!(p.price_per_unit, 5);
    }
}
