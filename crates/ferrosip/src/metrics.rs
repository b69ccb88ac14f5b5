//! The server's counters, in Prometheus text format for `/metrics`. Handles are registered
//! once at start, so counting a message is an atomic add (no lookup, no lock).

use metrics::{Counter, Gauge, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sip_message::{Message, Method, Protocol};

/// Methods counted by name; any other counts as `other`.
const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
    "other",
];
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
const TRANSPORTS: [Protocol; 5] = Protocol::ALL;

/// Counters for one direction (received or sent).
struct Direction {
    requests: Vec<Counter>,
    responses: Vec<Counter>,
    /// Messages per transport, in `TRANSPORTS` order.
    messages: Vec<Counter>,
}

/// Every metric the server exports.
pub(crate) struct Metrics {
    handle: PrometheusHandle,
    received: Direction,
    sent: Direction,
    malformed: Vec<Counter>,
    /// TCP connections closed at once for being over a limit.
    tcp_refused: Counter,
    /// Script reloads: succeeded, refused.
    reloads: [Counter; 2],
    /// Call records made: answered, missed; and those the database refused.
    calls: [Counter; 2],
    calls_not_stored: Counter,
    auth_failures: Counter,
    transactions: Gauge,
    contacts: Gauge,
    subscribers: Gauge,
    /// The presence server's subscriptions and publications; messages kept for users
    /// offline.
    presence: [Gauge; 3],
    /// The media relay's: sessions, free port pairs; packets, bytes, dropped, lost, SRTP refused.
    relay_gauges: [Gauge; 2],
    relay_counters: [Counter; 6],
}

static META: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl Metrics {
    /// Registers every metric (all start at zero, so they show before the first message).
    pub(crate) fn new() -> Metrics {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &META)
        };
        let direction = |dir: &'static str| Direction {
            requests: METHODS
                .iter()
                .map(|m| {
                    counter(
                        "ferrosip_requests_total",
                        vec![Label::new("direction", dir), Label::new("method", *m)],
                    )
                })
                .collect(),
            responses: CLASSES
                .iter()
                .map(|c| {
                    counter(
                        "ferrosip_responses_total",
                        vec![Label::new("direction", dir), Label::new("class", *c)],
                    )
                })
                .collect(),
            messages: TRANSPORTS
                .iter()
                .map(|t| {
                    counter(
                        "ferrosip_transport_messages_total",
                        vec![
                            Label::new("direction", dir),
                            Label::new("transport", Protocol::name(*t)),
                        ],
                    )
                })
                .collect(),
        };
        let gauge = |name: &'static str| recorder.register_gauge(&Key::from_name(name), &META);
        for (name, help) in [
            (
                "ferrosip_requests_total",
                "SIP requests by direction and method",
            ),
            (
                "ferrosip_responses_total",
                "SIP responses by direction and status class",
            ),
            (
                "ferrosip_transport_messages_total",
                "SIP messages by direction and transport",
            ),
            (
                "ferrosip_malformed_messages_total",
                "Received messages that did not parse",
            ),
            (
                "ferrosip_tcp_connections_refused_total",
                "TCP connections closed at once: too many open, in total or from the address",
            ),
            (
                "ferrosip_script_reloads_total",
                "Routing script reloads by result",
            ),
            (
                "ferrosip_auth_failures_total",
                "Requests refused for wrong credentials",
            ),
            (
                "ferrosip_relay_packets_total",
                "RTP and RTCP packets the media relay forwarded",
            ),
            (
                "ferrosip_relay_bytes_total",
                "Bytes the media relay forwarded",
            ),
            (
                "ferrosip_relay_dropped_total",
                "Packets the media relay dropped: not from the latched source, or to no session",
            ),
            (
                "ferrosip_relay_lost_total",
                "RTP packets missing from the sequence numbers the media relay saw",
            ),
            (
                "ferrosip_relay_kernel_packets_total",
                "Of the packets the media relay forwarded, those the kernel forwarded by itself",
            ),
            (
                "ferrosip_relay_srtp_refused_total",
                "SRTP packets from browsers the media relay refused: a wrong authentication tag, a replay, or before the handshake",
            ),
        ] {
            recorder.describe_counter(name.into(), None, help.into());
        }
        for (name, help) in [
            (
                "ferrosip_transactions_active",
                "Proxy transactions in progress",
            ),
            (
                "ferrosip_contacts_registered",
                "Registered contacts (bindings)",
            ),
            ("ferrosip_subscribers", "Subscribers who can authenticate"),
            (
                "ferrosip_presence_subscriptions",
                "Subscriptions the presence server holds (handle_subscribe)",
            ),
            (
                "ferrosip_presence_publications",
                "Publications the presence server holds (handle_publish)",
            ),
            (
                "ferrosip_messages_kept",
                "Messages kept for users who are offline (m_store)",
            ),
            (
                "ferrosip_relay_sessions",
                "Calls whose media goes through the relay",
            ),
            (
                "ferrosip_relay_ports_free",
                "Port pairs the media relay has left",
            ),
        ] {
            recorder.describe_gauge(name.into(), None, help.into());
        }
        let reload = |result: &'static str| {
            counter(
                "ferrosip_script_reloads_total",
                vec![Label::new("result", result)],
            )
        };
        Metrics {
            received: direction("in"),
            sent: direction("out"),
            malformed: TRANSPORTS
                .iter()
                .map(|t| {
                    counter(
                        "ferrosip_malformed_messages_total",
                        vec![Label::new("transport", Protocol::name(*t))],
                    )
                })
                .collect(),
            tcp_refused: counter("ferrosip_tcp_connections_refused_total", Vec::new()),
            reloads: [reload("ok"), reload("error")],
            calls: ["answered", "missed"].map(|outcome| {
                counter(
                    "ferrosip_call_records_total",
                    vec![Label::new("outcome", outcome)],
                )
            }),
            calls_not_stored: counter("ferrosip_call_records_not_stored_total", Vec::new()),
            auth_failures: counter("ferrosip_auth_failures_total", Vec::new()),
            transactions: gauge("ferrosip_transactions_active"),
            contacts: gauge("ferrosip_contacts_registered"),
            subscribers: gauge("ferrosip_subscribers"),
            presence: [
                "ferrosip_presence_subscriptions",
                "ferrosip_presence_publications",
                "ferrosip_messages_kept",
            ]
            .map(gauge),
            relay_gauges: ["ferrosip_relay_sessions", "ferrosip_relay_ports_free"].map(gauge),
            relay_counters: [
                "ferrosip_relay_packets_total",
                "ferrosip_relay_bytes_total",
                "ferrosip_relay_dropped_total",
                "ferrosip_relay_lost_total",
                "ferrosip_relay_srtp_refused_total",
                "ferrosip_relay_kernel_packets_total",
            ]
            .map(|name| counter(name, Vec::new())),
            handle,
        }
    }

    /// Counts a parsed message received over `protocol`.
    pub(crate) fn received(&self, msg: &Message, protocol: Protocol) {
        count(&self.received, protocol, msg.method(), msg.status());
    }

    /// Counts a message sent over `protocol`, read from its first line.
    pub(crate) fn sent(&self, data: &[u8], protocol: Protocol) {
        let first = data.split(|&b| b == b' ').next().unwrap_or_default();
        if first == b"SIP/2.0" {
            let status = data
                .get(8..11)
                .and_then(|s| std::str::from_utf8(s).ok()?.parse().ok());
            count(&self.sent, protocol, None, status);
        } else {
            let method = std::str::from_utf8(first).map(Method::from_token).ok();
            count(&self.sent, protocol, method, None);
        }
    }

    /// Counts a received message that did not parse.
    pub(crate) fn malformed(&self, protocol: Protocol) {
        self.malformed[transport_index(protocol)].increment(1);
    }

    /// Counts a TCP connection closed for being over a limit.
    pub(crate) fn tcp_refused(&self) {
        self.tcp_refused.increment(1);
    }

    /// Counts a call record made, of a call answered or missed.
    pub(crate) fn call_recorded(&self, missed: bool) {
        self.calls[usize::from(missed)].increment(1);
    }

    /// Counts call records the database refused.
    pub(crate) fn calls_not_stored(&self, n: usize) {
        self.calls_not_stored.increment(n as u64);
    }

    /// Counts a script reload that succeeded or was refused.
    pub(crate) fn reloaded(&self, ok: bool) {
        self.reloads[usize::from(!ok)].increment(1);
    }

    /// The text for `/metrics`, with the gauges and totals kept elsewhere set to these.
    pub(crate) fn render(&self, now: Snapshot) -> String {
        self.auth_failures.absolute(now.auth_failures);
        self.transactions.set(now.transactions as f64);
        self.contacts.set(now.contacts as f64);
        self.subscribers.set(now.subscribers as f64);
        for (g, v) in self.presence.iter().zip(now.presence) {
            g.set(v as f64);
        }
        if let Some(r) = now.relay {
            self.relay_gauges[0].set(r.sessions as f64);
            self.relay_gauges[1].set(r.ports_free as f64);
            for (c, v) in self.relay_counters.iter().zip([
                r.packets,
                r.bytes,
                r.dropped,
                r.lost,
                r.refused,
                r.kernel_packets,
            ]) {
                c.absolute(v);
            }
        }
        self.handle.render()
    }
}

/// Values the core keeps, read when `/metrics` is asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) auth_failures: u64,
    pub(crate) transactions: usize,
    pub(crate) contacts: usize,
    pub(crate) subscribers: usize,
    /// Subscriptions, publications, messages kept.
    pub(crate) presence: [usize; 3],
    /// The media relay's counters, when it runs.
    pub(crate) relay: Option<relay::Totals>,
}

fn transport_index(p: Protocol) -> usize {
    TRANSPORTS.iter().position(|t| *t == p).unwrap_or(0)
}

fn count(d: &Direction, protocol: Protocol, method: Option<Method<'_>>, status: Option<u16>) {
    d.messages[transport_index(protocol)].increment(1);
    if let Some(m) = method {
        let i = METHODS
            .iter()
            .position(|n| *n == m.as_str())
            .unwrap_or(METHODS.len() - 1);
        d.requests[i].increment(1);
    } else if let Some(s) = status {
        if let Some(c) = (s / 100)
            .checked_sub(1)
            .and_then(|i| d.responses.get(usize::from(i)))
        {
            c.increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn counts_by_method_class_and_transport() {
        let m = Metrics::new();
        let invite = Message::parse(
            &b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nContent-Length: 0\r\n\r\n"[..],
        )
        .unwrap();
        m.received(&invite, Protocol::Udp);
        m.sent(
            b"SIP/2.0 407 Proxy Authentication Required\r\n",
            Protocol::Tcp,
        );
        m.sent(b"FOO sip:x SIP/2.0\r\n", Protocol::Udp);
        m.malformed(Protocol::Udp);
        m.reloaded(false);
        m.tcp_refused();
        m.call_recorded(true);
        m.call_recorded(false);
        m.call_recorded(true);
        m.calls_not_stored(2);
        let text = m.render(Snapshot {
            auth_failures: 3,
            transactions: 2,
            contacts: 5,
            subscribers: 1,
            presence: [10, 2, 3],
            relay: Some(relay::Totals {
                sessions: 4,
                ports_free: 100,
                packets: 1000,
                bytes: 172_000,
                dropped: 7,
                lost: 2,
                refused: 3,
                kernel_packets: 600,
            }),
        });
        let v = |s: &str| value(&text, s);
        assert_eq!(
            v("ferrosip_call_records_total{outcome=\"missed\"}"),
            Some(2.0)
        );
        assert_eq!(
            v("ferrosip_call_records_total{outcome=\"answered\"}"),
            Some(1.0)
        );
        assert_eq!(v("ferrosip_call_records_not_stored_total"), Some(2.0));
        assert_eq!(v("ferrosip_relay_sessions"), Some(4.0));
        assert_eq!(v("ferrosip_presence_subscriptions"), Some(10.0));
        assert_eq!(v("ferrosip_presence_publications"), Some(2.0));
        assert_eq!(v("ferrosip_messages_kept"), Some(3.0));
        assert_eq!(v("ferrosip_relay_ports_free"), Some(100.0));
        assert_eq!(v("ferrosip_relay_packets_total"), Some(1000.0));
        assert_eq!(v("ferrosip_relay_bytes_total"), Some(172_000.0));
        assert_eq!(v("ferrosip_relay_dropped_total"), Some(7.0));
        assert_eq!(v("ferrosip_relay_lost_total"), Some(2.0));
        assert_eq!(v("ferrosip_relay_srtp_refused_total"), Some(3.0));
        assert_eq!(v("ferrosip_relay_kernel_packets_total"), Some(600.0));
        assert_eq!(
            v("ferrosip_requests_total{direction=\"in\",method=\"INVITE\"}"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            v("ferrosip_requests_total{direction=\"out\",method=\"other\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("ferrosip_responses_total{direction=\"out\",class=\"4xx\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("ferrosip_responses_total{direction=\"out\",class=\"2xx\"}"),
            Some(0.0)
        );
        assert_eq!(
            v("ferrosip_transport_messages_total{direction=\"out\",transport=\"tcp\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("ferrosip_malformed_messages_total{transport=\"udp\"}"),
            Some(1.0)
        );
        assert_eq!(
            v("ferrosip_script_reloads_total{result=\"error\"}"),
            Some(1.0)
        );
        assert_eq!(v("ferrosip_auth_failures_total"), Some(3.0));
        assert_eq!(v("ferrosip_tcp_connections_refused_total"), Some(1.0));
        assert_eq!(v("ferrosip_contacts_registered"), Some(5.0));
    }
}
