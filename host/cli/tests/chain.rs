//! On-chain mode as an operator runs it: `byoc orchestrator` and `byoc gateway` processes on a real
//! EVM (anvil with the test chain's contracts, `byoc_e2e::chain`), `byoc sender` funding the gateway's
//! key, discovery from the chain's pool and from a webhook, priced streams paid with tickets that the
//! orchestrators redeem on chain once their params expire, exactly once, across a SIGKILL; and the
//! official Python SDK paying an on-chain orchestrator through `byoc signer`, whose key holds the
//! deposit.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use byoc_e2e::chain::{ChainOptions, TestChain, address_of, dev_key, tools_available};
use byoc_e2e::clients::sse_until;
use byoc_e2e::media::make_ts_segments;
use byoc_e2e::nodes::plugins_dir;
use byoc_payment::SecretKey;
use common::{Node, byoc_within, http, legs, round_trip, start, started, status_of};
use serde_json::{Value, json};

/// Each winning ticket's face value (and expected value: every ticket wins): enough to cover a
/// redemption at the local chain's gas prices.
const FACE: u128 = 1_000_000_000_000_000;

/// A key file (plain hex, 0600) for `key`.
fn key_file(dir: &Path, name: &str, key: &SecretKey) -> String {
    let path = dir.join(name);
    std::fs::write(&path, hex(key.to_bytes().as_ref())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A plugin directory holding only passthrough (an orchestrator compiles nothing else).
fn passthrough_only(dir: &Path) -> PathBuf {
    let out = dir.join("plugins");
    let from = plugins_dir().join("passthrough");
    std::fs::create_dir_all(out.join("passthrough")).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), out.join("passthrough").join(entry.file_name())).unwrap();
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The tickets in an orchestrator's store, as `byoc tickets export` prints them.
async fn tickets(store: &str) -> Vec<Value> {
    let (ok, out, err) = byoc_within(&["tickets", "export", "--store", store], Duration::from_secs(30)).await;
    assert!(ok, "{err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Waits (bounded) until every ticket of `store` is in `state`; returns them.
async fn all_in_state(store: &str, state: &str, limit: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let t = tickets(store).await;
        if !t.is_empty() && t.iter().all(|t| t["state"] == state) {
            return t;
        }
        assert!(start.elapsed() < limit, "tickets of {store} not all {state} after {limit:?}: {t:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The gas `tx` cost its sender.
async fn gas_cost(tc: &TestChain, tx: &str) -> U256 {
    let hash: B256 = tx.parse().unwrap();
    let r = tc.provider().get_transaction_receipt(hash).await.unwrap().unwrap();
    U256::from(r.gas_used) * U256::from(r.effective_gas_price)
}

struct Orch {
    node: Option<Node>,
    args: Vec<String>,
    store: String,
    url: String,
    key: SecretKey,
}

impl Orch {
    fn new(dir: &Path, name: &str, key: SecretKey, tc: &TestChain, plugins: &Path) -> Orch {
        Orch::with(dir, name, key, tc, plugins, "127.0.0.1", &["--price", "passthrough=1000"])
    }

    /// An orchestrator listening on `ip`, with `more` flags (prices among them).
    fn with(dir: &Path, name: &str, key: SecretKey, tc: &TestChain, plugins: &Path, ip: &str, more: &[&str]) -> Orch {
        let port = free_port();
        let store = dir.join(format!("{name}.sqlite")).to_str().unwrap().to_string();
        let face = FACE.to_string();
        let mut args: Vec<String> = [
            "orchestrator",
            "--listen",
            &format!("{ip}:{port}"),
            "--key",
            &key_file(dir, &format!("{name}.key"), &key),
            "--plugins",
            plugins.to_str().unwrap(),
            "--ticket-store",
            &store,
            "--ticket-ev",
            &face,
            "--ticket-face-value",
            &face,
            "--eth-url",
            &tc.url,
            "--eth-controller",
            &tc.controller.to_string(),
            "--chain-poll-ms",
            "200",
            "--max-gas-price",
            "5gwei",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(more.iter().map(|s| s.to_string()));
        Orch { node: None, args, store, url: format!("http://{ip}:{port}"), key }
    }

    async fn start(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let node = Node::start(&args, "orchestrator listening on ").await;
        assert_eq!(node.url, self.url);
        self.node = Some(node);
    }

    async fn kill(&mut self) {
        if let Some(mut n) = self.node.take() {
            n.kill().await;
        }
    }
}

/// A tiny webhook answering go-livepeer's orchestrator list.
async fn webhook(answer: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::Json(answer) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_chain_discovery_payment_failover_and_redemption_across_a_sigkill() {
    if !tools_available("on_chain_discovery_payment_failover_and_redemption_across_a_sigkill").unwrap()
        || !byoc_e2e::media::tool_available("on_chain_discovery_payment_failover_and_redemption", "ffmpeg")
    {
        return;
    }
    // Long rounds: tickets made now stay redeemable while the test mines past their params' expiry.
    let tc = TestChain::start_with(ChainOptions { round_length: 400, ..ChainOptions::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plugins = passthrough_only(dir.path());
    let controller = tc.controller.to_string();
    let chain_flags = ["--eth-url", tc.url.as_str(), "--eth-controller", controller.as_str(), "--chain-poll-ms", "200"];
    let mut a = Orch::new(dir.path(), "a", dev_key(1).unwrap(), &tc, &plugins);
    let mut b = Orch::new(dir.path(), "b", dev_key(3).unwrap(), &tc, &plugins);
    // Both in the pool with their service URIs (A first: more stake).
    tc.add_orchestrator(&a.key, U256::from(200), &a.url).await.unwrap();
    tc.add_orchestrator(&b.key, U256::from(100), &b.url).await.unwrap();
    a.start().await;
    b.start().await;

    // An unfunded gateway key is refused at start, with what to do.
    let broke = key_file(dir.path(), "broke.key", &dev_key(4).unwrap());
    let args = [&["gateway", "--listen", "127.0.0.1:0", "--key", broke.as_str()][..], &chain_flags[..]].concat();
    let (ok, _, err) = byoc_within(&args, Duration::from_secs(60)).await;
    assert!(!ok && err.contains("no deposit and no reserve") && err.contains("byoc sender fund"), "{err}");
    // And an orchestrator refuses that key's tickets before anything starts: 402, naming why.
    let r = token_request(&a.url, &dev_key(4).unwrap()).await;
    assert_eq!(r.status(), 402);
    assert!(r.text().await.unwrap().contains("no deposit and no reserve"));

    // The gateway's key funded with `byoc sender`, and its status read back.
    let gw_key = dev_key(2).unwrap();
    let gw_file = key_file(dir.path(), "gw.key", &gw_key);
    let fund = [
        &["sender", "fund", "--key", gw_file.as_str(), "--deposit", "1eth", "--reserve", "1eth"][..],
        &chain_flags[..4],
    ]
    .concat();
    let (ok, out, err) = byoc_within(&fund, Duration::from_secs(60)).await;
    assert!(ok, "{out}{err}");
    let status = [&["sender", "status", "--json", "--key", gw_file.as_str()][..], &chain_flags[..4]].concat();
    let (ok, out, err) = byoc_within(&status, Duration::from_secs(60)).await;
    assert!(ok, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (s["deposit"].as_str(), s["reserve"].as_str(), s["unlocking"].as_bool()),
        (Some("1000000000000000000"), Some("1000000000000000000"), Some(false)),
        "{s}"
    );
    assert_eq!(s["pool_size"], 2);

    // A gateway that knows orchestrators only from the chain's pool.
    let gw_args = [&["gateway", "--listen", "127.0.0.1:0", "--key", gw_file.as_str()][..], &chain_flags[..]].concat();
    let gw = Node::start(&gw_args, "gateway listening on ").await;
    let segs: Vec<Vec<u8>> =
        make_ts_segments(dir.path(), 3).await.unwrap().iter().map(|p| std::fs::read(p).unwrap()).collect();
    let s1 = started(&gw.url, "passthrough", legs(json!({})), "paid").await;
    assert_eq!(status_of(&s1).await["orchestrator"], a.url.as_str(), "the pool's first orchestrator");
    assert_eq!(round_trip(&s1, &segs[0], Duration::from_secs(20)).await.as_deref(), Some(&segs[0][..]));
    let on_a = tickets(&a.store).await;
    assert_eq!(on_a.len(), 1, "one winning ticket paid the start: {on_a:?}");
    assert_eq!(on_a[0]["sender"], gw_key.address().to_checksum().as_str());
    assert_eq!(on_a[0]["face_value"], FACE.to_string().as_str());
    assert_eq!(on_a[0]["creation_round"], 1, "the chain's round");

    // A killed with SIGKILL: the stream fails over to B, found in the pool too, and pays B.
    let mut events = http().get(s1["events_url"].as_str().unwrap()).send().await.unwrap();
    a.kill().await;
    sse_until(&mut events, "orchestrator_swap", Duration::from_secs(30)).await;
    assert_eq!(status_of(&s1).await["orchestrator"], b.url.as_str());
    assert_eq!(round_trip(&s1, &segs[1], Duration::from_secs(20)).await.as_deref(), Some(&segs[1][..]));
    assert_eq!(tickets(&b.store).await.len(), 1);

    // A second gateway that knows orchestrators only from a webhook (go-livepeer's answer): B scores best.
    let hook = webhook(json!([{"address": a.url, "score": 0.1}, {"address": b.url, "score": 0.9}])).await;
    let hooked = Node::start(
        &["gateway", "--listen", "127.0.0.1:0", "--key", gw_file.as_str(), "--orchestrator-webhook", hook.as_str()],
        "gateway listening on ",
    )
    .await;
    let s2 = started(&hooked.url, "passthrough", legs(json!({})), "hooked").await;
    assert_eq!(status_of(&s2).await["orchestrator"], b.url.as_str());
    assert_eq!(http().post(s2["stop_url"].as_str().unwrap()).send().await.unwrap().status(), 200);

    // The params expire (40 blocks) while the gas price is over A's and B's limit (5 gwei): nothing is
    // redeemed, and A (restarted on its store) waits too. B redeems once the price falls.
    let deposit_before = tc.sender_info(address_of(&gw_key)).await.unwrap().deposit;
    tc.set_gas_price(20_000_000_000).await.unwrap();
    tc.mine(41).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = tickets(&b.store).await;
    assert!(waiting.iter().all(|t| t["state"] == "pending"), "{waiting:#?}");
    assert!(waiting[0]["last_error"].as_str().unwrap_or("").contains("gas price"), "{waiting:#?}");
    let a_before = tc.balance(address_of(&a.key)).await.unwrap();
    a.start().await;
    tc.set_gas_price(1_000_000_000).await.unwrap();
    tc.mine(1).await.unwrap();
    let done_a = all_in_state(&a.store, "redeemed", Duration::from_secs(60)).await;
    let done_b = all_in_state(&b.store, "redeemed", Duration::from_secs(60)).await;
    // A got its face value, less exactly the gas of its redemption; the gateway's deposit paid both.
    let a_after = tc.balance(address_of(&a.key)).await.unwrap();
    let gas = gas_cost(&tc, done_a[0]["redeemed_tx"].as_str().unwrap()).await;
    assert_eq!(a_after + gas, a_before + U256::from(FACE));
    let deposit_after = tc.sender_info(address_of(&gw_key)).await.unwrap().deposit;
    assert_eq!(deposit_after, deposit_before - U256::from(2 * FACE));
    for t in done_a.iter().chain(&done_b) {
        let hash: [u8; 32] =
            alloy::hex::decode(t["recipient_rand_hash"].as_str().unwrap()).unwrap().try_into().unwrap();
        assert_ne!(hash, [0; 32]);
    }
    // Nothing is redeemed twice: still one redemption each after more passes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tc.sender_info(address_of(&gw_key)).await.unwrap().deposit, deposit_after);

    // The gateway's key starts unlocking: the orchestrators refuse its tickets and the gateway stops
    // paying; a new stream is refused with 402 naming why, before anything starts.
    let unlock = [&["sender", "unlock", "--key", gw_file.as_str()][..], &chain_flags[..4]].concat();
    let (ok, out, err) = byoc_within(&unlock, Duration::from_secs(60)).await;
    assert!(ok && out.contains("unlocking"), "{out}{err}");
    let r = token_request(&b.url, &gw_key).await;
    assert_eq!(r.status(), 402);
    assert!(r.text().await.unwrap().contains("unlocking"));
    let r = start(&hooked.url, "passthrough", legs(json!({})), "refused").await;
    assert_eq!(r.status(), 402);
    let body = r.text().await.unwrap();
    assert!(body.contains("unlocking"), "{body}");
    a.kill().await;
    b.kill().await;

    // After the unlock period (2 rounds) the deposit and the reserve come back to the key.
    let eth_before = tc.balance(address_of(&gw_key)).await.unwrap();
    let info = tc.sender_info(address_of(&gw_key)).await.unwrap();
    let rounds = tc.options.unlock_period + 1;
    tc.mine(rounds * tc.options.round_length).await.unwrap();
    let withdraw = [&["sender", "withdraw", "--key", gw_file.as_str()][..], &chain_flags[..4]].concat();
    let (ok, out, err) = byoc_within(&withdraw, Duration::from_secs(60)).await;
    assert!(ok && out.contains("withdrawn"), "{out}{err}");
    let after = tc.sender_info(address_of(&gw_key)).await.unwrap();
    assert_eq!((after.deposit, after.funds_remaining), (U256::ZERO, U256::ZERO));
    let returned = info.deposit + info.funds_remaining;
    let eth_after = tc.balance(address_of(&gw_key)).await.unwrap();
    assert!(eth_after > eth_before && eth_after <= eth_before + returned, "{eth_before} → {eth_after}");
}

/// `GET /process/token` for passthrough as `key`.
async fn token_request(orch: &str, key: &SecretKey) -> reqwest::Response {
    let credential = byoc_payment::job::EthAddressCredential::new(key).unwrap().to_header();
    http()
        .get(format!("{orch}/process/token"))
        .header("Livepeer-Eth-Address", credential)
        .header("Livepeer-Capability", "passthrough")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_pays_an_on_chain_orchestrator_through_byoc_signer_from_the_signers_deposit() {
    let test = "the_python_sdk_pays_an_on_chain_orchestrator_through_byoc_signer_from_the_signers_deposit";
    if !tools_available(test).unwrap() {
        return;
    }
    let Some(py) = byoc_e2e::peers::python(test) else { return };
    // Long rounds: the tickets stay redeemable while the test mines past their params' expiry.
    let tc = TestChain::start_with(ChainOptions { round_length: 400, ..ChainOptions::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let chain_flags =
        ["--eth-url", tc.url.as_str(), "--eth-controller", &tc.controller.to_string(), "--chain-poll-ms", "200"]
            .map(str::to_string);
    // The orchestrator: text-transform priced, gRPC on the SDK's fixed port of its own loopback
    // address, every ticket a winner worth FACE; the SDK does not stamp its jobs.
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(plugins.join("text-transform")).unwrap();
    for file in ["text-transform.wasm", "manifest.toml"] {
        std::fs::copy(plugins_dir().join("text-transform").join(file), plugins.join("text-transform").join(file))
            .unwrap();
    }
    let more = [
        "--grpc-listen",
        "127.0.0.7:8935",
        "--price",
        "text-transform=1000000000000",
        "--accept-unstamped-jobs",
        "true",
    ];
    let mut orch = Orch::with(dir.path(), "orch", dev_key(5).unwrap(), &tc, &plugins, "127.0.0.7", &more);
    tc.add_orchestrator(&orch.key, U256::from(100), &orch.url).await.unwrap();
    orch.start().await;
    let (orch_url, store) = (orch.url.clone(), orch.store.clone());

    // The signer's key holds the deposit and the reserve (funded with `byoc sender`).
    let signer_key = dev_key(6).unwrap();
    let signer_file = key_file(dir.path(), "signer.key", &signer_key);
    let fund = [
        &["sender", "fund", "--key", signer_file.as_str(), "--deposit", "1eth", "--reserve", "1eth"][..],
        &chain_flags.each_ref().map(String::as_str)[..4],
    ]
    .concat();
    let (ok, out, err) = byoc_within(&fund, Duration::from_secs(60)).await;
    assert!(ok, "{out}{err}");
    let signer_args =
        ["signer", "--listen", "127.0.0.7:0", "--key", signer_file.as_str(), "--orchestrator", orch_url.as_str()];
    let signer =
        Node::start_with_env(&signer_args, &[("BYOC_SIGNER_API_KEY", "chain-e2e")], "signer listening on ").await;

    let driver = byoc_e2e::nodes::root().join("tests/peers/sdk_paid.py");
    let run = tokio::process::Command::new(&py)
        .arg("-u")
        .arg(driver)
        .args(["jobs", orch_url.as_str(), signer.url.as_str(), "chain-e2e"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run).await.expect("the SDK finished").unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() == 3, "{stdout}\n{stderr}");
    let mut balances = Vec::new();
    for line in &lines[..2] {
        assert_eq!(line["status"], 200, "{line}\n{stderr}");
        assert_eq!(line["data"], json!({"mode": "upper", "text": "HELLO BYOC"}));
        balances.push(line["balance"].as_str().unwrap().parse::<i128>().unwrap());
    }
    assert!(balances[0] > 0 && balances[1] > balances[0], "each call paid: {balances:?}");
    // Every ticket wins: the signer's tickets are in the orchestrator's store, to redeem on chain
    // from the signer's deposit.
    let stored = tickets(&store).await;
    let signer_address = address_of(&signer_key).to_string().to_lowercase();
    let from_signer = stored.iter().filter(|t| t.to_string().to_lowercase().contains(&signer_address[2..])).count();
    assert!(from_signer >= 2, "{stored:?}");
    // Once their params expire the orchestrator redeems them, paid from the signer's deposit.
    let deposit_before = tc.sender_info(address_of(&signer_key)).await.unwrap().deposit;
    tc.mine(41).await.unwrap();
    let redeemed = all_in_state(&store, "redeemed", Duration::from_secs(60)).await;
    let deposit_after = tc.sender_info(address_of(&signer_key)).await.unwrap().deposit;
    assert_eq!(deposit_after, deposit_before - U256::from(FACE) * U256::from(redeemed.len()));
}
