//! A stream's trickle channels: their names (unguessable, so that no stream id can name another
//! stream's channels), their mime types, and how the gateway and the worker are told of them.

use byoc_protocol::{JobParameters, headers};
use serde::Serialize;

const MP2T: &str = "video/MP2T";

/// The trickle channels of one stream. Every name is the stream id, a random part and the
/// channel's role (`{id}-{random}-out`), so that no stream id can name, or guess, another
/// stream's channels: a client starting `<V>-out` gets channels of its own, not V's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamChannels {
    /// Video in: the gateway publishes, the worker or plugin subscribes.
    pub input: Option<String>,
    /// Video out: the worker or plugin publishes, the gateway subscribes.
    pub output: Option<String>,
    /// Updates and keepalives from the gateway.
    pub control: String,
    /// Events (status, heartbeats) to the gateway.
    pub events: String,
    /// Data lines to the gateway.
    pub data: Option<String>,
}

/// The URL of the channel `name` on the node reached at `service_url`.
pub(crate) fn url(service_url: &str, name: &str) -> String {
    format!("{}/ai/trickle/{name}", service_url.trim_end_matches('/'))
}

/// One channel as the gateway and the worker are told of it.
pub(crate) struct Announced<'a> {
    pub(crate) name: &'a str,
    pub(crate) mime: &'static str,
    /// The response header that hands its URL to the gateway.
    pub(crate) header: &'static str,
    /// The field of the worker's start body that hands its URL to the worker.
    pub(crate) worker_field: &'static str,
}

impl StreamChannels {
    /// Fresh names for the channels of stream `id`: control and events, and the inputs and
    /// outputs its job parameters enable.
    pub(crate) fn new(id: &str, params: &JobParameters) -> StreamChannels {
        let base = format!("{id}-{}", byoc_payment::random_hex(8));
        StreamChannels {
            input: params.enable_video_ingress.then(|| format!("{base}-in")),
            output: params.enable_video_egress.then(|| format!("{base}-out")),
            control: format!("{base}-control"),
            events: format!("{base}-events"),
            data: params.enable_data_output.then(|| format!("{base}-data")),
        }
    }

    /// Every channel's name.
    pub fn names(&self) -> Vec<String> {
        self.announced().iter().map(|a| a.name.to_string()).collect()
    }

    /// Every channel, as the gateway and the worker are told of it (control and events first).
    pub(crate) fn announced(&self) -> Vec<Announced<'_>> {
        let mut out = vec![
            Announced {
                name: &self.control,
                mime: "application/json",
                header: headers::CONTROL_URL,
                worker_field: "control_url",
            },
            Announced {
                name: &self.events,
                mime: "application/json",
                header: headers::EVENTS_URL,
                worker_field: "events_url",
            },
        ];
        if let Some(name) = &self.input {
            out.push(Announced { name, mime: MP2T, header: headers::PUBLISH_URL, worker_field: "subscribe_url" });
        }
        if let Some(name) = &self.output {
            out.push(Announced { name, mime: MP2T, header: headers::SUBSCRIBE_URL, worker_field: "publish_url" });
        }
        if let Some(name) = &self.data {
            out.push(Announced {
                name,
                mime: "application/jsonl",
                header: headers::DATA_URL,
                worker_field: "data_url",
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_url_is_under_the_trickle_path_of_the_service_url() {
        assert_eq!(url("http://o:1/", "s-x-in"), "http://o:1/ai/trickle/s-x-in");
        assert_eq!(url("http://o:1", "s-x-in"), "http://o:1/ai/trickle/s-x-in");
    }

    #[test]
    fn only_enabled_inputs_and_outputs_get_channels() {
        let params = JobParameters { enable_video_egress: true, ..Default::default() };
        let ch = StreamChannels::new("s", &params);
        assert!(ch.input.is_none() && ch.data.is_none());
        assert!(ch.output.as_deref().is_some_and(|o| o.starts_with("s-") && o.ends_with("-out")));
        let roles: Vec<&str> = ch.announced().iter().map(|a| a.worker_field).collect();
        assert_eq!(roles, ["control_url", "events_url", "publish_url"]);
        assert_eq!(ch.names().len(), 3);
        assert_ne!(StreamChannels::new("s", &params), ch, "names are fresh every time");
    }
}
