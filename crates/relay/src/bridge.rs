//! Streams with a browser on a side: the relay's WebRTC leg (crate `webrtc`: ICE-lite,
//! DTLS-SRTP, rtcp-mux) faces it, and the other side is a phone (plain RTP, RTCP on the
//! next port) or a browser too (a leg of its own: each is decrypted and encrypted anew).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use sdp::WebRtcLeg;
use webrtc::{Identity, Leg, Received, Refusal, Remote, Transmit};

use crate::rtp;
use crate::session::{Dropped, Endpoint, Forward, Relay, SessionId, Side, Totals};

/// What WebRTC legs need: the relay's DTLS identity, and the address of the relay's
/// candidate (the one the SDP names).
#[derive(Debug, Clone)]
pub(crate) struct WebRtc {
    identity: Identity,
    fingerprint: String,
    announce: IpAddr,
}

/// What an SDP says of one stream for the relay's WebRTC legs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebRtcStream {
    /// The sender is a browser: its parameters (`None`: it sends plain RTP).
    pub sender: Option<Remote>,
    /// Whether the receiver is a browser (`None`: as it was, or in a new stream as the
    /// sender).
    pub receiver: Option<bool>,
}

/// A packet that reached one of a stream's ports.
pub(crate) struct Arrival<'a> {
    pub(crate) now: Instant,
    pub(crate) src: SocketAddr,
    pub(crate) data: &'a [u8],
    /// It came on the RTCP port (RTP's + 1).
    pub(crate) rtcp_port: bool,
    /// Its side knows our port (an offerer learns it from the answer).
    pub(crate) told: bool,
}

impl Relay {
    /// Lets the relay face browsers with `identity`, its candidates naming `announce`.
    pub fn with_webrtc(mut self, identity: Identity, announce: IpAddr) -> Relay {
        self.webrtc = Some(WebRtc {
            fingerprint: webrtc::fingerprint_value(identity.fingerprint()),
            identity,
            announce,
        });
        self
    }

    /// What an SDP from `sender`'s side of session `id` says of WebRTC, stream by stream:
    /// its side's legs take the browser's parameters (or go, towards a phone); the
    /// receiver's side gets a leg if it is a browser. Gives, per stream, what the SDP
    /// towards the receiver says of its leg (`offer`: that SDP is an offer); `None`
    /// where the receiver is no browser, and everywhere without WebRTC.
    pub fn set_webrtc(
        &mut self,
        now: Instant,
        id: &SessionId,
        sender: Side,
        streams: &[WebRtcStream],
        offer: bool,
    ) -> Vec<Option<WebRtcLeg>> {
        let mut legs = vec![None; streams.len()];
        let (Some(w), Some(&key)) = (&self.webrtc, self.ids.get(id)) else {
            return legs;
        };
        let Some(session) = self.sessions.get_mut(&key) else {
            return legs;
        };
        let mut any = false;
        for (i, ws) in streams.iter().enumerate() {
            let Some(Some(stream)) = session.streams.get_mut(i) else {
                continue;
            };
            // A leg added or dropped: the kernel forwards none of the stream's packets.
            stream.unload(&mut self.offloads);
            // Untold, the receiver speaks what it did, or, in a new stream, what the
            // sender does.
            let known = std::mem::replace(&mut stream.kinds_known, true);
            let (mine, theirs) = match sender {
                Side::Offerer => (&mut stream.offerer, &mut stream.answerer),
                Side::Answerer => (&mut stream.answerer, &mut stream.offerer),
            };
            match &ws.sender {
                Some(remote) => {
                    let leg = mine.leg.get_or_insert_with(|| w.leg(mine.port, now));
                    leg.set_remote(now, remote.clone(), offer);
                    drain(leg, mine.port, &mut self.out);
                }
                None => mine.leg = None,
            }
            let browser = ws.receiver.unwrap_or(match known {
                true => theirs.leg.is_some(),
                false => mine.leg.is_some(),
            });
            if !browser {
                theirs.leg = None;
            } else {
                let leg = theirs.leg.get_or_insert_with(|| w.leg(theirs.port, now));
                // Our answer to the browser's offer goes: what it restarted is taken.
                if !offer {
                    leg.commit(now);
                    drain(leg, theirs.port, &mut self.out);
                }
                legs[i] = Some(WebRtcLeg {
                    ice: leg.credentials(),
                    fingerprint: w.fingerprint.clone(),
                    setup: leg.setup(offer),
                    mid: leg.mid().map(str::to_owned),
                });
            }
            any |= mine.leg.is_some() || theirs.leg.is_some();
        }
        match any {
            true => self.with_legs.insert(key),
            false => self.with_legs.remove(&key),
        };
        legs
    }

    /// A datagram a WebRTC leg sends (an ICE answer, a DTLS record): out of our port
    /// `.0`.
    pub fn poll_transmit(&mut self) -> Option<(u16, Transmit)> {
        self.out.pop_front()
    }

    /// True when some session has a WebRTC leg, whose timers want [`Relay::handle_timeouts`]
    /// called often (a DTLS flight is resent after a second).
    pub fn has_legs(&self) -> bool {
        !self.with_legs.is_empty()
    }

    /// Time passed: WebRTC legs resend DTLS flights that got no answer, or give up.
    pub fn handle_timeouts(&mut self, now: Instant) {
        for key in &self.with_legs {
            let Some(session) = self.sessions.get_mut(key) else {
                continue;
            };
            for s in session.streams.iter_mut().flatten() {
                for e in [&mut s.offerer, &mut s.answerer] {
                    if let Some(leg) = e.leg.as_mut() {
                        if leg.poll_timeout().is_some_and(|t| t <= now) {
                            leg.handle_timeout(now);
                            drain(leg, e.port, &mut self.out);
                        }
                    }
                }
            }
        }
    }
}

impl WebRtc {
    fn leg(&self, port: u16, now: Instant) -> Box<Leg> {
        Box::new(Leg::new(
            &self.identity,
            SocketAddr::new(self.announce, port),
            now,
        ))
    }
}

/// Queues what `leg` has to send, out of our port `port`.
fn drain(leg: &mut Leg, port: u16, out: &mut std::collections::VecDeque<(u16, Transmit)>) {
    while let Some(t) = leg.poll_transmit() {
        out.push_back((port, t));
    }
}

/// A packet of a stream with a WebRTC leg on a side, from `from`'s side to `to`'s: where it
/// goes, and the bytes to send when they are not the ones that came.
pub(crate) fn relay(
    a: &Arrival<'_>,
    from: &mut Endpoint,
    to: &mut Endpoint,
    out: &mut std::collections::VecDeque<(u16, Transmit)>,
    totals: &mut Totals,
) -> Result<(Forward, Option<Vec<u8>>), Dropped> {
    let plain: Vec<u8>;
    let data = match from.leg.as_mut() {
        // rtcp-mux: a browser sends nothing to the RTCP port.
        Some(_) if a.rtcp_port => return Err(Dropped::NotRtp),
        Some(leg) => {
            let got = leg.receive(a.now, a.src, a.data);
            drain(leg, from.port, out);
            plain = match got {
                Received::Rtp(p) | Received::Rtcp(p) => p,
                Received::Handled => return Err(Dropped::Taken),
                Received::Refused(Refusal::Unchecked) => {
                    from.stats.dropped += 1;
                    return Err(Dropped::WrongSource);
                }
                Received::Refused(Refusal::NotMedia) => return Err(Dropped::NotRtp),
                Received::Refused(_) => {
                    from.stats.refused += 1;
                    return Err(Dropped::Refused);
                }
            };
            &plain[..]
        }
        None => {
            // A phone's RTP and RTCP, for a browser: nothing else.
            if a.data.first().is_none_or(|b| !(128..=191).contains(b)) {
                return Err(Dropped::NotRtp);
            }
            from.accept(a.now, a.src, a.rtcp_port, a.told)?;
            a.data
        }
    };
    let forward = match to.leg.as_mut() {
        Some(leg) => {
            let t = leg.protect(a.now, data).ok_or(Dropped::NoDestination)?;
            let f = Forward {
                from: to.port,
                to: t.to,
            };
            (f, Some(t.data))
        }
        None => {
            // To a phone, RTCP goes to its RTCP port, from ours.
            let rtcp = a.rtcp_port || rtp::is_rtcp(data);
            let dest = to.destination(rtcp).ok_or(Dropped::NoDestination)?;
            let f = Forward {
                from: to.port + u16::from(rtcp),
                to: dest,
            };
            (f, from.leg.is_some().then(|| data.to_vec()))
        }
    };
    totals.lost += from.stats.count(a.now, data, a.rtcp_port, false);
    Ok(forward)
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
