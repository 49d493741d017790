//! Who signs the gateway's jobs and pays its tickets: its own key, or a remote signer
//! (`byoc gateway --signer URL`, go-livepeer's remote-signer API, e.g. `byoc signer`) that holds the
//! paying key so the gateway never does.
//!
//! With a remote signer the gateway asks it for the address credential once at start
//! (`POST /sign-orchestrator-info`, failing fast as go-livepeer's gateway does), for each job's
//! signature (`POST /sign-byoc-job`), and for each payment (`POST /generate-live-payment`, given the
//! orchestrator's ticket params and price as an `OrchestratorInfo` and the seconds to pay for as
//! `inPixels`). Every answer is checked before use: the signatures must recover to the signer's
//! address and the payment must come from it for this orchestrator's params, so a misconfigured or
//! hostile signer cannot make the gateway send what an orchestrator would refuse.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use byoc_payment::job::{EthAddressCredential, JobRequest, SignaturePolicy};
use byoc_payment::proto::{CAPABILITY_BYOC, OrchestratorInfo, PriceInfo};
use byoc_payment::{Address, Payment, Price, SecretKey, TicketParams, create_payment};
use http::{HeaderMap, HeaderName, HeaderValue};
use prost::Message as _;
use serde::Deserialize;
use serde_json::json;

/// How long a signer may take to answer.
const SIGNER_TIMEOUT: Duration = Duration::from_secs(10);

/// A remote signer the gateway was connected to: its base URL, the headers every request carries
/// (e.g. `Authorization`), and its address credential.
#[derive(Clone)]
pub struct RemoteSigner {
    http: reqwest::Client,
    base: String,
    headers: HeaderMap,
    credential: EthAddressCredential,
    address: Address,
}

impl std::fmt::Debug for RemoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The headers may hold a secret.
        f.debug_struct("RemoteSigner").field("base", &self.base).field("address", &self.address).finish()
    }
}

#[derive(Deserialize)]
struct InfoAnswer {
    address: String,
    signature: String,
}

#[derive(Deserialize)]
struct JobAnswer {
    sender: String,
    signature: String,
}

#[derive(Deserialize)]
struct PaymentAnswer {
    #[serde(default)]
    payment: String,
}

impl RemoteSigner {
    /// Connects to the signer at `url` (`http://` or `https://`), sending `headers` with every request:
    /// asks for its address credential and checks it. Fails when the signer cannot be reached or
    /// answers something that does not verify.
    pub async fn connect(url: &str, headers: &[(String, String)]) -> Result<RemoteSigner, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("signer URL {url:?} must start with http:// or https://"));
        }
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name = HeaderName::try_from(k.as_str()).map_err(|e| format!("signer header {k:?}: {e}"))?;
            let value = HeaderValue::try_from(v.as_str()).map_err(|e| format!("signer header {k:?}: {e}"))?;
            map.append(name, value);
        }
        let http = byoc_trickle::http_client_builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("signer client: {e}"))?;
        let base = url.trim_end_matches('/').to_string();
        let mut signer = RemoteSigner {
            http,
            base,
            headers: map,
            credential: EthAddressCredential { addr: String::new(), sig: String::new() },
            address: Address([0; 20]),
        };
        let info: InfoAnswer = signer.call("sign-orchestrator-info", &json!({})).await?;
        let credential = EthAddressCredential { addr: info.address, sig: info.signature };
        let address = credential
            .verify(SignaturePolicy::Required)
            .map_err(|e| format!("the signer's address credential does not verify: {e}"))?;
        // Orchestrators compare the credential's text with the checksummed address.
        signer.credential = EthAddressCredential { addr: address.to_checksum(), sig: credential.sig };
        signer.address = address;
        Ok(signer)
    }

    /// The signer's address: the sender of the gateway's jobs and payments.
    pub fn address(&self) -> Address {
        self.address
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, route: &str, body: &serde_json::Value) -> Result<T, String> {
        let url = format!("{}/{route}", self.base);
        let resp = self
            .http
            .post(&url)
            .headers(self.headers.clone())
            .json(body)
            .timeout(SIGNER_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("signer {url}: {e}"))?;
        let status = resp.status();
        let bytes = crate::answer::answer_body(resp).await;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(format!("signer {url} answered {status}: {}", text.trim()));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("signer {url} answered unreadable JSON: {e}"))
    }

    /// Has `job` signed by the signer (its `sender` and `sig` set), and checks the signature.
    async fn sign_job(&self, job: &mut JobRequest) -> Result<(), String> {
        let body = json!({
            "id": job.id,
            "capability": job.capability,
            "request": job.request,
            "parameters": job.parameters,
            "timeout_seconds": job.timeout_seconds,
        });
        let answer: JobAnswer = self.call("sign-byoc-job", &body).await?;
        job.sender = answer.sender;
        job.sig = answer.signature;
        match job.verify(SignaturePolicy::Required) {
            Ok(Some(who)) if who == self.address => Ok(()),
            Ok(_) => Err(format!("the signer signed the job as {}, not as {}", job.sender, self.address)),
            Err(e) => Err(format!("the signer's job signature does not verify: {e}")),
        }
    }

    /// A payment of `seconds` of `price` to the orchestrator whose params these are, for `capability`.
    async fn payment(
        &self,
        params: &TicketParams,
        price: &Price,
        capability: &str,
        seconds: u64,
    ) -> Result<Payment, String> {
        let price_info = PriceInfo {
            price_per_unit: price.price_per_unit,
            pixels_per_unit: price.pixels_per_unit,
            ..Default::default()
        };
        let info = OrchestratorInfo {
            ticket_params: Some(params.to_proto()),
            address: params.recipient.0.to_vec(),
            capabilities_prices: vec![PriceInfo {
                capability: CAPABILITY_BYOC,
                constraint: capability.to_string(),
                ..price_info.clone()
            }],
            price_info: Some(price_info),
            ..Default::default()
        };
        let body = json!({
            "orchestrator": STANDARD.encode(info.encode_to_vec()),
            "capability": capability,
            "inPixels": seconds,
        });
        let answer: PaymentAnswer = self.call("generate-live-payment", &body).await?;
        let payment = Payment::from_header(&answer.payment).map_err(|e| format!("the signer's payment: {e}"))?;
        if payment.sender != self.address.0 {
            return Err("the signer's payment is not from the signer's address".into());
        }
        if payment.ticket_params.as_ref() != Some(&params.to_proto()) {
            return Err("the signer's payment is not made with this orchestrator's ticket params".into());
        }
        if payment.ticket_sender_params.is_empty() {
            return Err("the signer's payment has no tickets".into());
        }
        Ok(payment)
    }
}

/// How the gateway signs and pays.
pub(crate) enum Signing {
    /// With its own key.
    Local(LocalKey),
    /// Through a remote signer.
    Remote(RemoteSigner),
}

/// The gateway's own key, and its `Livepeer-Eth-Address` credential, signed once (the signature of
/// the address is deterministic, and every token request carries it).
pub(crate) struct LocalKey {
    key: SecretKey,
    credential: std::sync::OnceLock<EthAddressCredential>,
}

impl LocalKey {
    pub(crate) fn new(key: SecretKey) -> LocalKey {
        LocalKey { key, credential: std::sync::OnceLock::new() }
    }

    fn credential(&self) -> Result<EthAddressCredential, String> {
        if let Some(c) = self.credential.get() {
            return Ok(c.clone());
        }
        let c = EthAddressCredential::new(&self.key).map_err(|e| e.to_string())?;
        Ok(self.credential.get_or_init(|| c).clone())
    }
}

impl Signing {
    /// The sender of the gateway's jobs and payments.
    pub(crate) fn address(&self) -> Address {
        match self {
            Signing::Local(local) => local.key.address(),
            Signing::Remote(r) => r.address,
        }
    }

    /// The `Livepeer-Eth-Address` credential token requests carry.
    pub(crate) fn credential(&self) -> Result<EthAddressCredential, String> {
        match self {
            Signing::Local(local) => local.credential(),
            Signing::Remote(r) => Ok(r.credential.clone()),
        }
    }

    /// Sets `job`'s `sender` and `sig`.
    pub(crate) async fn sign(&self, job: &mut JobRequest) -> Result<(), String> {
        match self {
            Signing::Local(local) => job.sign(&local.key).map_err(|e| e.to_string()),
            Signing::Remote(r) => r.sign_job(job).await,
        }
    }

    /// A payment of `n` tickets (own key), or of `seconds` of `price` (remote signer: it picks the
    /// number of tickets), for `capability` with these params.
    pub(crate) async fn pay(
        &self,
        params: &TicketParams,
        price: &Price,
        capability: &str,
        n: u32,
        seconds: u64,
    ) -> Result<Payment, String> {
        match self {
            Signing::Local(local) => create_payment(&local.key, params, price, n).map_err(|e| e.to_string()),
            Signing::Remote(r) => r.payment(params, price, capability, seconds).await,
        }
    }
}
