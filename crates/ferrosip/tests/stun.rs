//! STUN (RFC 5389): answered on the SIP UDP port and on a port of its own, to our own
//! requests and to Debian's `stun` client (package stun-client, an RFC 3489 client).

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use support::{free_port, Server};

/// A Binding request with transaction id bytes `n` (RFC 5389: magic cookie).
fn binding_request(n: u8) -> Vec<u8> {
    let mut r = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    r.extend_from_slice(&[n; 12]);
    r
}

/// The address in the XOR-MAPPED-ADDRESS of a Binding success response (IPv4).
fn xor_mapped(resp: &[u8]) -> Option<SocketAddr> {
    if resp.get(..2)? != [0x01, 0x01] {
        return None;
    }
    let mut at = 20;
    while at + 4 <= resp.len() {
        let kind = u16::from_be_bytes([resp[at], resp[at + 1]]);
        let len = usize::from(u16::from_be_bytes([resp[at + 2], resp[at + 3]]));
        let v = resp.get(at + 4..at + 4 + len)?;
        if kind == 0x0020 && v.get(1) == Some(&1) && len == 8 {
            let port = u16::from_be_bytes([v[2], v[3]]) ^ 0x2112;
            let ip: [u8; 4] = std::array::from_fn(|i| v[4 + i] ^ [0x21, 0x12, 0xa4, 0x42][i]);
            return Some(SocketAddr::from((ip, port)));
        }
        at += 4 + len.next_multiple_of(4);
    }
    None
}

/// Sends a Binding request to `to` and gives the address the answer says we came from.
fn ask(sock: &UdpSocket, to: SocketAddr, n: u8) -> Option<SocketAddr> {
    sock.send_to(&binding_request(n), to).expect("send");
    let mut buf = [0u8; 1500];
    let (len, from) = sock.recv_from(&mut buf).ok()?;
    assert_eq!(from, to, "answered from where it was asked");
    assert_eq!(&buf[8..20], &[n; 12], "the same transaction");
    xor_mapped(&buf[..len])
}

#[test]
fn stun_is_answered_on_the_sip_port_and_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stun_port = free_port();
    let server = Server::start_with_config(
        dir.path(),
        &format!("[stun]\nlisten = [\"127.0.0.1:{stun_port}\"]\n"),
    );
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let me = sock.local_addr().expect("addr");
    assert_eq!(ask(&sock, server.addr(), 1), Some(me), "the SIP port");
    let stun = SocketAddr::from(([127, 0, 0, 1], stun_port));
    assert_eq!(ask(&sock, stun, 2), Some(me), "the STUN port");
    // SIP goes on as before on the same port.
    let ua = support::Ua::new();
    ua.send(server.addr(), &ua.options(server.port, "after-stun"));
    assert_eq!(ua.recv().status(), Some(200));
    assert!(server.terminate());
}

#[test]
fn debians_stun_client_learns_its_address() {
    if std::process::Command::new("stun")
        .arg("-h")
        .output()
        .is_err()
    {
        panic!("the `stun` client is missing: apt-get install stun-client (scripts/test.sh does)");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let stun_port = free_port();
    let server = Server::start_with_config(
        dir.path(),
        &format!("[stun]\nlisten = [\"127.0.0.1:{stun_port}\"]\n"),
    );
    let local = free_port();
    let out = std::process::Command::new("timeout")
        .args(["10", "stun", &format!("127.0.0.1:{stun_port}"), "-v", "-p"])
        .arg(local.to_string())
        .output()
        .expect("run stun");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("MappedAddress = 127.0.0.1:{local}")),
        "{text}"
    );
    assert!(server.terminate());
}
