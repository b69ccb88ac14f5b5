//! The relay with its kernel path, in a network namespace this test makes (as root; the
//! project's `scripts/test.sh` runs it so): two phones on loopback hear each other, the
//! kernel forwards their streams once latched and says so in the relay's counters, an
//! intruder is still not heard, and once the call is deleted nothing is forwarded.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use relay::MediaOp;
use relay_net::{MediaRelay, RelayConfig};

mod support;
use support::{audio_port, config, phone, phone_sdp, request};

/// Sends `n` RTP packets from `from` to `to`; gives the sources of those `at` receives.
fn exchange(from: &UdpSocket, to: SocketAddr, at: &UdpSocket, n: u16) -> Vec<SocketAddr> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    for seq in 0..n {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 168]);
        from.send_to(&p, to).expect("send");
        if let Ok((_, src)) = at.recv_from(&mut buf) {
            got.push(src);
        }
    }
    got
}

/// The audio port an SDP the relay rewrote names.
fn port_of(sdp: Vec<u8>) -> u16 {
    audio_port(&String::from_utf8(sdp).expect("utf-8"))
}

#[test]
fn latched_streams_go_through_the_kernel_until_the_call_ends() {
    std::thread::spawn(|| {
        // SAFETY: unshare changes this thread's network namespace alone (and the relay's
        // threads, made from it, start there).
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare (root?)"
        );
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let ns = format!("--net=/proc/{}/task/{tid}/ns/net", std::process::id());
        let up = Command::new("nsenter")
            .args([ns.as_str(), "ip", "link", "set", "lo", "up"])
            .status();
        assert!(up.expect("nsenter").success());
        let relay = MediaRelay::start(&RelayConfig {
            kernel: true,
            ..config(21000, 20, "127.0.0.1", true)
        })
        .expect("relay");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let (a, b, intruder) = (phone(), phone(), phone());
        let offer = rt.block_on(relay.apply(&request(MediaOp::Offer, "a", "", phone_sdp(&a))));
        let to_b_side = port_of(offer.expect("offered"));
        let answer = rt.block_on(relay.apply(&request(MediaOp::Answer, "a", "b", phone_sdp(&b))));
        let to_a_side = port_of(answer.expect("answered"));
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..3 {
            let heard = exchange(&a, at(to_a_side), &b, 50);
            assert_eq!(heard.len(), 50, "b heard {} of 50", heard.len());
            assert!(heard.iter().all(|&s| s == at(to_b_side)));
            let heard = exchange(&b, at(to_b_side), &a, 50);
            assert_eq!(heard.len(), 50, "a heard {} of 50", heard.len());
            assert!(heard.iter().all(|&s| s == at(to_a_side)));
        }
        assert!(
            exchange(&intruder, at(to_a_side), &b, 5).is_empty(),
            "latched"
        );
        // Within the second the relay reads the kernel's counters, and counts every packet.
        // The relay forwarded a's first 50 (b was not latched yet) and b's first; the
        // kernel all the others.
        let deadline = Instant::now() + Duration::from_secs(3);
        let totals = loop {
            let t = rt.block_on(relay.totals());
            if t.packets >= 300 || Instant::now() > deadline {
                break t;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(totals.packets, 300, "{totals:?}");
        assert_eq!(totals.kernel_packets, 248, "{totals:?}");
        assert_eq!(totals.dropped, 5, "the intruder's");
        rt.block_on(relay.apply(&request(MediaOp::Delete, "a", "b", Vec::new())))
            .expect("deleted");
        assert!(
            exchange(&a, at(to_a_side), &b, 5).is_empty(),
            "nothing forwarded after the delete"
        );
    })
    .join()
    .expect("thread");
}
