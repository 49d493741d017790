//! SDP offers into the WHIP and WHEP offer handling of the real WebRTC server (one UDP socket on
//! loopback, shared by every run): str0m's SDP parser and offer negotiation behind our checks. An offer
//! is answered or refused with an error; an accepted session is closed again, so that no run holds
//! a slot, and the server keeps serving. str0m panics on some offers; the server catches that, so a
//! panic inside str0m is let through to that catch (see `byoc_fuzz::contain_panics_in`).
#![no_main]

use std::sync::OnceLock;

use byoc_media::{Leg, SessionOwner, WebRtcConfig, WebRtcServer};
use libfuzzer_sys::fuzz_target;
use tokio::sync::mpsc;

struct Server {
    runtime: tokio::runtime::Runtime,
    server: WebRtcServer,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let server = runtime.block_on(WebRtcServer::bind(WebRtcConfig::default())).expect("bind 127.0.0.1:0");
        Server { runtime, server }
    })
}

fuzz_target!(|input: (bool, &str)| {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| byoc_fuzz::contain_panics_in(&["str0m"]));
    let (whep, sdp) = input;
    let Server { runtime, server } = server();
    let owner = SessionOwner { stream: "fuzz".into(), client: None };
    runtime.block_on(async {
        let answered = if whep {
            let (_tx, rx) = mpsc::channel(4);
            server.whep_offer(sdp, rx, owner.clone()).await
        } else {
            let (tx, _rx) = mpsc::channel(4);
            server.whip_offer(sdp, tx, owner.clone()).await
        };
        if let Ok((id, answer)) = answered {
            assert!(answer.starts_with("v=0"), "an answer that is not SDP");
            assert!(server.close(id, "fuzz", if whep { Leg::Whep } else { Leg::Whip }).await, "the session is gone");
        }
        assert_eq!(server.sessions().await, 0, "a session outlived its run");
    });
});
