//! The proxy's side of the media relay (`rtp_relay()`): which SDP of a transaction goes to
//! the relay and as what (an offer, an answer, the end of the call), and the responses that
//! wait for it in order.
//!
//! The relay itself is the IO layer's ([`Command::Media`](crate::Command::Media)): the
//! in-process one, or one driven over rtpengine's ng protocol. A request waits for it as
//! for DNS ([`crate::suspend`]). A response with SDP is taken by its transaction at once
//! (no retransmission of the request meanwhile) and waits only on its way upstream, and
//! those after it wait behind it, so that none overtakes another.

use std::collections::VecDeque;
use std::net::IpAddr;

use ::relay::{Carrier, MediaOp, MediaRequest};
use bytes::Bytes;
use sip_message::{Message, Method};

/// A transaction whose media goes through the relay: its call, and its responses that
/// wait for the relay.
#[derive(Debug)]
pub(crate) struct MediaMark {
    pub(crate) call: MediaCall,
    pub(crate) held: HeldResponses,
}

/// The call of a transaction whose media goes through the relay.
#[derive(Debug, Clone)]
pub(crate) struct MediaCall {
    call_id: String,
    from_tag: String,
    to_tag: String,
    /// An initial INVITE: its failure, or a CANCEL, ends the call's session.
    initial: bool,
    /// An INVITE, initial or not: its 2xx answers the call (a re-INVITE comes only once it
    /// was answered; an UPDATE may come while it rings).
    invite: bool,
    /// The request carried the offer (its responses' SDP answers it), else a 2xx offers.
    offer_in_request: bool,
    /// Where the request came from (the caller, for an initial INVITE): its responses'
    /// streams count against it while the call rings.
    caller: IpAddr,
    /// The request's sender authenticated (`$au` is set).
    authenticated: bool,
    /// The request came over WebSocket: its sender is a browser, which its responses'
    /// SDP reaches as WebRTC.
    from_browser: bool,
}

/// A response on its way upstream (its transaction has taken it already), waiting for the
/// relay or behind one that does.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) code: u16,
    /// The response as it goes upstream.
    pub(crate) data: Bytes,
    /// A 2xx (sent upstream as one: every one of an INVITE, RFC 6026).
    pub(crate) two_xx: bool,
    /// Where it came from (the callee's signalling address).
    pub(crate) source: IpAddr,
    /// Its SDP is with the relay.
    asked: bool,
}

impl Held {
    /// A response to send upstream.
    pub(crate) fn new(code: u16, data: Bytes, two_xx: bool, source: IpAddr) -> Held {
        Held {
            code,
            data,
            two_xx,
            source,
            asked: false,
        }
    }

    /// What the relay is asked for it; `relayed`: SDP of an earlier response was.
    fn request(&self, mark: &MediaCall, relayed: bool) -> Option<MediaRequest> {
        let resp = Message::parse(self.data.clone()).ok()?;
        for_response(&resp, mark, self.source, relayed)
    }
}

/// What becomes of a response a transaction would send upstream.
pub(crate) enum Hold {
    /// Send it now.
    Go(Held),
    /// It waits; ask the relay this, when given.
    Wait(Option<MediaRequest>),
}

/// The most responses a context holds for the relay.
const MAX_HELD: usize = 16;

/// The responses of a context that wait for the relay, oldest first.
#[derive(Debug, Default)]
pub(crate) struct HeldResponses {
    queue: VecDeque<Held>,
    /// The SDP of one of the transaction's responses went to the relay.
    relayed: bool,
}

/// The SDP body of `msg`, if it has one.
pub(crate) fn sdp_body(msg: &Message) -> Option<Bytes> {
    let t = msg.content_type().ok().flatten()?;
    let sdp = t.kind.eq_ignore_ascii_case("application") && t.subtype.eq_ignore_ascii_case("sdp");
    let body = msg.body();
    (sdp && !body.is_empty()).then_some(body)
}

fn tags(msg: &Message) -> Option<(String, String)> {
    let from = msg.from().ok()?.tag()?.to_owned();
    let to = msg.to().ok()?.tag().unwrap_or_default().to_owned();
    Some((from, to))
}

impl MediaMark {
    /// The mark of request `msg` from `source` (over WebSocket: `from_browser`), who
    /// `authenticated` or not (`None` without a Call-ID and From tag).
    pub(crate) fn of(
        msg: &Message,
        source: IpAddr,
        authenticated: bool,
        from_browser: bool,
    ) -> Option<MediaMark> {
        let (from_tag, to_tag) = tags(msg)?;
        let method = msg.method()?;
        let call = MediaCall {
            call_id: msg.call_id().ok()?.to_owned(),
            initial: method == Method::Invite && to_tag.is_empty(),
            invite: method == Method::Invite,
            from_tag,
            to_tag,
            // Any body counts (a multipart one too): its responses' SDP is an answer.
            offer_in_request: !msg.body().is_empty() && offers(method),
            caller: source,
            authenticated,
            from_browser,
        };
        Some(MediaMark {
            call,
            held: HeldResponses::default(),
        })
    }
}

impl MediaCall {
    /// The end of the call's session (a CANCEL, a failed initial INVITE); `None` for a
    /// request inside a dialog (a failed re-INVITE leaves the call as it was).
    pub(crate) fn delete(&self) -> Option<MediaRequest> {
        self.initial.then(|| MediaRequest {
            op: MediaOp::Delete,
            call_id: self.call_id.clone(),
            from_tag: self.from_tag.clone(),
            to_tag: self.to_tag.clone(),
            sdp: Vec::new(),
            source: None,
            caller: None,
            authenticated: false,
            receiver_ipv6: false,
            receiver: relay::Peer::AsSender,
            carrier: None,
        })
    }
}

/// Methods whose SDP is an offer (in ACK and PRACK it answers one made in a response).
fn offers(method: Method) -> bool {
    !matches!(method, Method::Ack | Method::Prack)
}

/// Where a request goes, as the relay needs to know it: a party on IPv6, and what it speaks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NextHop {
    pub(crate) ipv6: bool,
    pub(crate) peer: relay::Peer,
}

/// What request `msg` (from `source`, who `authenticated` or not, to `next`) asks of the
/// relay: its SDP as an offer or an answer, or the end of the call (BYE); `None` when it
/// has no business there.
pub(crate) fn for_request(
    msg: &Message,
    source: IpAddr,
    authenticated: bool,
    next: NextHop,
) -> Option<MediaRequest> {
    let method = msg.method()?;
    let (from_tag, to_tag) = tags(msg)?;
    let call_id = msg.call_id().ok()?.to_owned();
    let (op, sdp) = match method {
        Method::Bye => (MediaOp::Delete, Vec::new()),
        m => {
            let op = if offers(m) {
                MediaOp::Offer
            } else {
                MediaOp::Answer
            };
            (op, sdp_body(msg)?.to_vec())
        }
    };
    // ng's tags: from-tag is the offerer's; in an answer the request's sender (From) is
    // the answerer, so the tags swap.
    let (from_tag, to_tag) = match op {
        MediaOp::Answer => (to_tag, from_tag),
        _ => (from_tag, to_tag),
    };
    Some(MediaRequest {
        op,
        call_id,
        from_tag,
        to_tag,
        sdp,
        source: Some(source),
        caller: None,
        authenticated,
        receiver_ipv6: next.ipv6,
        receiver: next.peer,
        carrier: Some(Carrier::Request),
    })
}

/// What a response (from `source`) to a request marked `mark` asks of the relay: the SDP of
/// a provisional or 2xx response, an answer to the request's offer or an offer of its own;
/// for the 2xx without SDP of an INVITE whose call has media at the relay (its
/// INVITE's, or that of a response `relayed` before), that the call is answered.
fn for_response(
    resp: &Message,
    mark: &MediaCall,
    source: IpAddr,
    relayed: bool,
) -> Option<MediaRequest> {
    let status = resp.status()?;
    if !(101..300).contains(&status) {
        return None;
    }
    let answers = status >= 200 && mark.invite;
    let (from_tag, to_tag) = tags(resp)?;
    let (op, sdp, from_tag, to_tag) = match (sdp_body(resp), mark.offer_in_request) {
        (Some(sdp), true) => (MediaOp::Answer, sdp.to_vec(), from_tag, to_tag),
        (Some(sdp), false) => (MediaOp::Offer, sdp.to_vec(), to_tag, from_tag),
        (None, offered) if answers && (offered || relayed) => {
            (MediaOp::Answer, Vec::new(), from_tag, to_tag)
        }
        (None, _) => return None,
    };
    Some(MediaRequest {
        op,
        call_id: mark.call_id.clone(),
        from_tag,
        to_tag,
        sdp,
        source: Some(source),
        caller: Some(mark.caller),
        authenticated: mark.authenticated,
        receiver_ipv6: mark.caller.to_canonical().is_ipv6(),
        // Back to the caller: a browser (over WebSocket), or, for an answer, whatever its
        // offer spoke (a phone doing DTLS-SRTP over UDP gets it back); an offer in a
        // response to a phone's INVITE without SDP is plain.
        receiver: match (mark.from_browser, op) {
            (true, _) => relay::Peer::WebRtc,
            (false, MediaOp::Offer) => relay::Peer::Plain,
            (false, _) => relay::Peer::AsSender,
        },
        carrier: Some(match answers {
            true => Carrier::Final,
            false => Carrier::Provisional,
        }),
    })
}

/// `msg` with its body replaced by `sdp`.
pub(crate) fn with_body(msg: &Message, sdp: Vec<u8>) -> Option<Message> {
    let mut e = msg.edit();
    e.replace_body(Bytes::from(sdp));
    Message::parse(e.finish()).ok()
}

impl HeldResponses {
    /// Holds a response when it must wait: its SDP goes to the relay (the request to send
    /// is given when it is the first to wait), or others wait before it. Past
    /// [`MAX_HELD`], it is dropped (a 2xx is retransmitted).
    pub(crate) fn hold(&mut self, mark: &MediaCall, mut item: Held) -> Hold {
        let request = item.request(mark, self.relayed);
        self.relayed |= request.as_ref().is_some_and(|r| !r.sdp.is_empty());
        if request.is_none() && self.queue.is_empty() {
            return Hold::Go(item);
        }
        if self.queue.len() >= MAX_HELD {
            return Hold::Wait(None);
        }
        let first = self.queue.is_empty();
        item.asked = first && request.is_some();
        self.queue.push_back(item);
        Hold::Wait(request.filter(|_| first))
    }

    /// The relay answered for the oldest response: it goes on with `sdp` for its body
    /// (`None`: as it came).
    pub(crate) fn answered(&mut self, sdp: Option<Vec<u8>>) -> Option<Held> {
        let mut held = self.queue.pop_front().filter(|h| h.asked)?;
        // (No SDP back: a 2xx without SDP that told the relay the call is answered.)
        let parsed = sdp.filter(|s| !s.is_empty()).and_then(|sdp| {
            let resp = Message::parse(held.data.clone()).ok()?;
            with_body(&resp, sdp)
        });
        if let Some(resp) = parsed {
            held.data = resp.to_bytes();
        }
        Some(held)
    }

    /// The next response that may go on now (none waits for the relay before it), or the
    /// request for the relay of the next one that must wait.
    pub(crate) fn next(&mut self, mark: &MediaCall) -> Option<Result<Held, MediaRequest>> {
        let front = self.queue.front_mut()?;
        if front.asked {
            return None;
        }
        match front.request(mark, self.relayed) {
            Some(request) => {
                front.asked = true;
                Some(Err(request))
            }
            None => self.queue.pop_front().map(Ok),
        }
    }
}
