//! Matching requests and responses to transactions (RFC 3261 §17.1.3, §17.2.3, §9.2).

use sip_message::header::Via;
use sip_message::{push_decimal, Message, Method, ParseError};

/// Identifies a transaction. For RFC 3261 branches (`z9hG4bK…`): the branch, the sent-by of
/// the top Via (server side) and the method, with ACK folded into INVITE (§17.2.3), and the
/// CSeq number and Call-ID, which every retransmission, ACK and CANCEL shares: two requests
/// that reuse a branch (a client sending its authenticated retry under the branch of the
/// challenged request, the RFC 4475 test messages) stay apart. For
/// older peers, the RFC 2543 fields: Request-URI, tags, Call-ID, CSeq number and the top Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey(Box<str>);

/// Which side of the transaction the key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

fn method_class<'a>(m: Method<'a>) -> &'a str {
    match m {
        Method::Ack => "INVITE",
        m => m.as_str(),
    }
}

impl TransactionKey {
    /// The key of a received or sent request. An ACK gets the key of its INVITE.
    pub fn for_request(msg: &Message, role: Role) -> Result<TransactionKey, ParseError> {
        Self::for_request_with_via(msg, role).map(|(key, _)| key)
    }

    /// The key of a received or sent request, and its top Via (parsed once for both).
    pub fn for_request_with_via(
        msg: &Message,
        role: Role,
    ) -> Result<(TransactionKey, Via<'_>), ParseError> {
        let method = msg.method().map(method_class).unwrap_or_default();
        let via = msg.top_via()?;
        Ok((Self::build_with(msg, &via, role, method)?, via))
    }

    /// The key of the INVITE server transaction a CANCEL targets (§9.2).
    pub fn cancel_target(cancel: &Message) -> Result<TransactionKey, ParseError> {
        Self::build(cancel, Role::Server, "INVITE")
    }

    /// The key of the client transaction a response belongs to: its top Via branch and CSeq
    /// method.
    pub fn for_response(msg: &Message) -> Result<TransactionKey, ParseError> {
        let method = msg.cseq()?.method;
        Self::build(msg, Role::Client, method_class(method))
    }

    fn build(msg: &Message, role: Role, method: &str) -> Result<TransactionKey, ParseError> {
        Self::build_with(msg, &msg.top_via()?, role, method)
    }

    fn build_with(
        msg: &Message,
        via: &Via<'_>,
        role: Role,
        method: &str,
    ) -> Result<TransactionKey, ParseError> {
        let sent_by = match role {
            Role::Client => "",
            Role::Server => via.host_raw,
        };
        let port = via.port.unwrap_or(0);
        if let Some(branch) = via.branch().filter(|_| via.has_rfc3261_branch()) {
            // Built by hand: this runs for every message, and `format!` cost a third of it.
            let (call_id, seq) = (msg.call_id()?, msg.cseq()?.seq);
            let len = branch.len() + sent_by.len() + method.len() + call_id.len() + 20;
            let mut key = String::with_capacity(len);
            for part in [branch, "|", sent_by, ":"] {
                key.push_str(part);
            }
            push_decimal(&mut key, u64::from(port));
            for part in ["|", method, "|"] {
                key.push_str(part);
            }
            push_decimal(&mut key, u64::from(seq));
            key.push('|');
            key.push_str(call_id);
            return Ok(TransactionKey(key.into()));
        }
        // RFC 2543: the To tag is left out so that the ACK of a non-2xx matches its INVITE.
        let from_tag = msg.from()?.tag().unwrap_or_default();
        let uri = msg.request_uri_str().unwrap_or_default();
        let key = format!(
            "2543|{uri}|{from_tag}|{}|{}|{}:{port}|{}|{method}",
            msg.call_id()?,
            msg.cseq()?.seq,
            via.host_raw,
            via.branch().unwrap_or_default(),
        );
        Ok(TransactionKey(key.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(s.as_bytes().to_vec()).expect("test message")
    }

    const INVITE: &str = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a.example.com:5060;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=f\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn ack_and_cancel_match_the_invite() {
        let invite = TransactionKey::for_request(&msg(INVITE), Role::Server).unwrap();
        let ack = msg(&INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK"));
        assert_eq!(
            TransactionKey::for_request(&ack, Role::Server).unwrap(),
            invite
        );
        let cancel = msg(&INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("1 INVITE", "1 CANCEL"));
        assert_ne!(
            TransactionKey::for_request(&cancel, Role::Server).unwrap(),
            invite
        );
        assert_eq!(TransactionKey::cancel_target(&cancel).unwrap(), invite);
    }

    #[test]
    fn responses_match_client_transactions() {
        let client = TransactionKey::for_request(&msg(INVITE), Role::Client).unwrap();
        let resp = msg("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a.example.com:5060;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=f\r\nTo: <sip:b@h>;tag=t\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(TransactionKey::for_response(&resp).unwrap(), client);
        let other = msg(&INVITE.replace("z9hG4bK1", "z9hG4bK2"));
        assert_ne!(
            TransactionKey::for_request(&other, Role::Client).unwrap(),
            client
        );
    }

    #[test]
    fn a_branch_reused_in_another_call_or_request_is_another_transaction() {
        let key = TransactionKey::for_request(&msg(INVITE), Role::Server).unwrap();
        for other in [
            INVITE.replace("Call-ID: c", "Call-ID: d"),
            INVITE.replace("CSeq: 1 INVITE", "CSeq: 2 INVITE"),
        ] {
            let other = TransactionKey::for_request(&msg(&other), Role::Server).unwrap();
            assert_ne!(other, key);
        }
    }

    #[test]
    fn rfc2543_requests_match_by_fields() {
        let old = INVITE.replace(";branch=z9hG4bK1", "");
        let key = TransactionKey::for_request(&msg(&old), Role::Server).unwrap();
        let ack = msg(&old
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK")
            .replace("To: <sip:b@h>", "To: <sip:b@h>;tag=x"));
        assert_eq!(
            TransactionKey::for_request(&ack, Role::Server).unwrap(),
            key
        );
        let next = msg(&old.replace("CSeq: 1", "CSeq: 2"));
        assert_ne!(
            TransactionKey::for_request(&next, Role::Server).unwrap(),
            key
        );
    }
}
