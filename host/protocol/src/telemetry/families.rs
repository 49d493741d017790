//! Every metric family byoc records: the one list `# HELP`, the per-node pages and the observability
//! docs are checked against.

use super::Family;
use super::Kind::{Counter, Gauge, Histogram};
use super::Owner::{Both, Gateway, Orchestrator, Signer};

const fn family(name: &'static str, kind: super::Kind, owner: super::Owner, help: &'static str) -> Family {
    Family { name, kind, owner, error: false, help }
}

const fn error(name: &'static str, owner: super::Owner, help: &'static str) -> Family {
    Family { name, kind: Counter, owner, error: true, help }
}

/// The families, by the node that shows them.
pub const FAMILIES: &[Family] = &[
    // The HTTP servers of every node (`node`: gateway, orchestrator, trickle).
    family("byoc_http_connections", Gauge, Both, "Open HTTP connections."),
    family(
        "byoc_http_connections_closed_total",
        Counter,
        Both,
        "HTTP connections closed by a bound (reason: idle, header_timeout, evicted).",
    ),
    error(
        "byoc_http_connections_refused_total",
        Both,
        "HTTP connections refused with 503 at a cap (reason: node_cap, per_ip_cap).",
    ),
    // The remote signer (`byoc signer`).
    family("byoc_signer_payments_total", Counter, Signer, "Payments the remote signer made (kind: first, session)."),
    family("byoc_signer_tickets_total", Counter, Signer, "Tickets the remote signer signed."),
    family(
        "byoc_signer_jobs_signed_total",
        Counter,
        Signer,
        "BYOC jobs and orchestrator-info requests the remote signer signed (route).",
    ),
    error(
        "byoc_signer_refused_total",
        Signer,
        "Requests the remote signer refused (route; reason: auth, input, state, price, webhook, busy, internal).",
    ),
    family("byoc_signer_orchestrators", Gauge, Signer, "Orchestrators in the remote signer's last discovery snapshot."),
    // The gateway.
    family("byoc_gateway_streams_started_total", Counter, Gateway, "Streams started at the gateway, by capability."),
    family("byoc_gateway_streams_active", Gauge, Gateway, "Streams running at the gateway."),
    family("byoc_gateway_orchestrator_swaps_total", Counter, Gateway, "Streams moved to another orchestrator."),
    family("byoc_gateway_segments_in_total", Counter, Gateway, "Input segments sent to orchestrators."),
    family("byoc_gateway_segments_out_total", Counter, Gateway, "Output segments received from orchestrators."),
    family("byoc_gateway_media_sessions", Gauge, Gateway, "Media sessions live (leg: whip, whep, rtmp_in, rtmp_out)."),
    family(
        "byoc_gateway_media_sessions_total",
        Counter,
        Gateway,
        "Media sessions opened (leg: whip, whep, rtmp_in, rtmp_out, rtmp_play).",
    ),
    error(
        "byoc_gateway_media_refused_total",
        Gateway,
        "Media clients refused (leg; reason: bad_offer, busy, not_enabled, bad_key, limit).",
    ),
    family(
        "byoc_gateway_keyframe_requests_total",
        Counter,
        Gateway,
        "Keyframes asked of a WHIP publisher (reason: viewer_joined, viewer_asked).",
    ),
    family(
        "byoc_gateway_whip_replaced_total",
        Counter,
        Gateway,
        "WHIP publishers replaced by a newer one of the same stream.",
    ),
    error(
        "byoc_gateway_errors_total",
        Gateway,
        "Gateway errors (kind: no_orchestrator, orchestrator_unreachable, request_refused, webhook_refused, input_dropped).",
    ),
    family("byoc_gateway_tickets_sent_total", Counter, Gateway, "Priced mode: tickets the gateway sent."),
    // The orchestrator and what it hosts: plugins, trickle channels, tickets, the chain.
    family(
        "byoc_orchestrator_streams_started_total",
        Counter,
        Orchestrator,
        "Streams started on the orchestrator, by capability.",
    ),
    family(
        "byoc_orchestrator_streams_ended_total",
        Counter,
        Orchestrator,
        "Streams ended (reason: stopped, insufficient_balance, plugin_failed, control_closed, gateway_quiet, shutdown, start_failed).",
    ),
    family("byoc_orchestrator_streams_active", Gauge, Orchestrator, "Streams running on the orchestrator."),
    family(
        "byoc_orchestrator_batch_jobs_total",
        Counter,
        Orchestrator,
        "Batch jobs sent to external workers, by capability.",
    ),
    error(
        "byoc_orchestrator_streams_unpaid_total",
        Orchestrator,
        "Priced mode: streams stopped because their balance ran out.",
    ),
    family(
        "byoc_orchestrator_balance_wei",
        Gauge,
        Orchestrator,
        "Priced mode: balances summed per capability, in wei.",
    ),
    family("byoc_orchestrator_tickets_total", Counter, Orchestrator, "Priced mode: tickets received."),
    family("byoc_orchestrator_winning_tickets_total", Counter, Orchestrator, "Priced mode: winning tickets received."),
    error(
        "byoc_plugin_failures_total",
        Orchestrator,
        "Plugin sessions failed (kind: trap, timeout, memory-limit, output-limit, ...).",
    ),
    family(
        "byoc_plugin_call_seconds",
        Histogram,
        Orchestrator,
        "Time per plugin call (call: segment_start, chunk, segment_end, control, process).",
    ),
    error(
        "byoc_frames_dropped_total",
        Orchestrator,
        "Decoded frames dropped because a frame plugin was slower than its input, by capability.",
    ),
    family("byoc_capacity_in_use", Gauge, Orchestrator, "Slots in use per capability, at scrape time."),
    family("byoc_capacity_limit", Gauge, Orchestrator, "Slots per capability, at scrape time."),
    family("byoc_trickle_segments_published_total", Counter, Orchestrator, "Trickle segments published."),
    family("byoc_trickle_bytes_published_total", Counter, Orchestrator, "Trickle bytes published."),
    family("byoc_trickle_buffered_bytes", Gauge, Orchestrator, "Trickle segment bytes held in memory."),
    error(
        "byoc_trickle_segments_dropped_for_memory_total",
        Orchestrator,
        "Finished trickle segments dropped to stay within the memory bound.",
    ),
    error(
        "byoc_trickle_publishes_refused_for_memory_total",
        Orchestrator,
        "Trickle publishes refused (503) because they could not fit in the memory bound.",
    ),
    family("byoc_chain_block", Gauge, Orchestrator, "On-chain mode: the last block read."),
    family("byoc_chain_round", Gauge, Orchestrator, "On-chain mode: the current round."),
    error("byoc_chain_rpc_errors_total", Orchestrator, "On-chain mode: chain reads that failed."),
    family("byoc_chain_redemption_due", Gauge, Orchestrator, "On-chain mode: winning tickets due for redemption."),
    family("byoc_chain_tickets_redeemed_total", Counter, Orchestrator, "On-chain mode: tickets redeemed."),
    error(
        "byoc_chain_tickets_closed_total",
        Orchestrator,
        "On-chain mode: tickets closed unredeemed (state: used, expired, failed).",
    ),
    family(
        "byoc_chain_redemption_gas_waits_total",
        Counter,
        Orchestrator,
        "On-chain mode: redemptions put off because the gas price was over the maximum.",
    ),
];
