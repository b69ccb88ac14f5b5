//! SRTP and SRTCP (RFC 3711, AEAD RFC 7714) for one direction of one leg, over `rtc-srtp`:
//! no cryptography of our own. A packet that fails its authentication tag, or comes again,
//! is refused and counted, never passed on; so is SRTCP that says it is not encrypted
//! (`rtc-srtp` would take it without checking its tag), and a packet of an SSRC past the
//! [`MAX_SSRCS`] a context keeps state for.

use rtc_shared::error::Error;
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// Packets a replay window remembers (RFC 3711 §3.3.2: at least 64).
const REPLAY_WINDOW: usize = 128;

/// SSRCs a context keeps state for (`rtc-srtp` makes it for a packet's SSRC before it
/// checks the tag): a browser sends a few (audio, video, their retransmissions).
pub const MAX_SSRCS: usize = 64;

/// An SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `AES_CM_128_HMAC_SHA1_80`, which every WebRTC endpoint has.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (SDES offers).
    AesCm128HmacSha1_32,
    /// `AEAD_AES_128_GCM`.
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM`.
    AeadAes256Gcm,
}

impl Profile {
    fn rtc(self) -> ProtectionProfile {
        match self {
            Profile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Profile::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            Profile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            Profile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        }
    }

    /// The length of its master key and of its master salt, in bytes.
    pub fn key_and_salt_len(self) -> (usize, usize) {
        let p = self.rtc();
        (p.key_len(), p.salt_len())
    }
}

/// Why keys were not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpError(String);

impl std::fmt::Display for SrtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SRTP keys refused: {}", self.0)
    }
}

impl std::error::Error for SrtpError {}

/// What a leg refused, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    /// A wrong authentication tag: forged, damaged, or under other keys.
    pub auth: u64,
    /// A packet seen already (a replay).
    pub replayed: u64,
    /// Too short or malformed to be (S)RTP or (S)RTCP.
    pub malformed: u64,
}

/// One direction of a leg: its packets protected (towards the peer) or unprotected (from
/// it) under one master key and salt.
pub struct Srtp {
    ctx: Context,
    profile: Profile,
    /// The SSRCs given to `ctx` so far.
    ssrcs: Vec<u32>,
    refused: Refusals,
}

impl std::fmt::Debug for Srtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srtp")
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

impl Srtp {
    /// A context for `profile` with this master key and salt (their lengths:
    /// [`Profile::key_and_salt_len`]).
    pub fn new(profile: Profile, key: &[u8], salt: &[u8]) -> Result<Srtp, SrtpError> {
        let provider =
            rtc_srtp::crypto::default_provider().map_err(|e| SrtpError(e.to_string()))?;
        let ctx = Context::new(
            key,
            salt,
            profile.rtc(),
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
            provider.crypto(),
        )
        .map_err(|e| SrtpError(e.to_string()))?;
        Ok(Srtp {
            ctx,
            profile,
            ssrcs: Vec::new(),
            refused: Refusals::default(),
        })
    }

    /// True when the context may take a packet of the SSRC at `at` in `packet`: one it
    /// has state for, or a new one while it has room.
    fn room_for(&mut self, packet: &[u8], at: usize) -> bool {
        let Some(b) = packet.get(at..at + 4) else {
            self.refused.malformed += 1;
            return false;
        };
        let ssrc = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if self.ssrcs.contains(&ssrc) {
            return true;
        }
        if self.ssrcs.len() >= MAX_SSRCS {
            self.refused.malformed += 1;
            return false;
        }
        self.ssrcs.push(ssrc);
        true
    }

    /// An RTP packet protected for the peer; none when it is no RTP packet.
    pub fn protect_rtp(&mut self, rtp: &[u8]) -> Option<Vec<u8>> {
        if !self.room_for(rtp, 8) {
            return None;
        }
        let out = self.ctx.encrypt_rtp(rtp);
        self.taken(out)
    }

    /// An SRTP packet from the peer, unprotected; none (counted) when refused.
    pub fn unprotect_rtp(&mut self, srtp: &[u8]) -> Option<Vec<u8>> {
        if !self.room_for(srtp, 8) {
            return None;
        }
        let out = self.ctx.decrypt_rtp(srtp);
        self.taken(out)
    }

    /// An RTCP packet protected for the peer.
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Option<Vec<u8>> {
        if !self.room_for(rtcp, 4) {
            return None;
        }
        let out = self.ctx.encrypt_rtcp(rtcp);
        self.taken(out)
    }

    /// An SRTCP packet from the peer, unprotected; none (counted) when refused, also when
    /// its E flag says it is not encrypted (a browser encrypts all its SRTCP).
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Option<Vec<u8>> {
        // E and the SRTCP index: before the tag (AES-CM, RFC 3711 §3.4), or last (AEAD,
        // RFC 7714 §9.1).
        let after = match self.profile {
            Profile::AesCm128HmacSha1_80 => 10,
            Profile::AesCm128HmacSha1_32 => 4,
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => 0,
        };
        let e = srtcp
            .len()
            .checked_sub(after + 4)
            .filter(|&i| i >= 8)
            .map(|i| srtcp[i] & 0x80 != 0);
        match e {
            Some(true) => {}
            Some(false) => {
                self.refused.auth += 1;
                return None;
            }
            None => {
                self.refused.malformed += 1;
                return None;
            }
        }
        if !self.room_for(srtcp, 4) {
            return None;
        }
        let out = self.ctx.decrypt_rtcp(srtcp);
        self.taken(out)
    }

    /// What it refused so far.
    pub fn refused(&self) -> Refusals {
        self.refused
    }

    fn taken(&mut self, out: rtc_shared::error::Result<impl AsRef<[u8]>>) -> Option<Vec<u8>> {
        match out {
            Ok(p) => Some(p.as_ref().to_vec()),
            Err(e) => {
                let counter = match e {
                    Error::ErrFailedToVerifyAuthTag
                    | Error::RtpFailedToVerifyAuthTag
                    | Error::RtcpFailedToVerifyAuthTag => &mut self.refused.auth,
                    Error::SrtpSsrcDuplicated(..)
                    | Error::SrtcpSsrcDuplicated(..)
                    | Error::ErrDuplicated => &mut self.refused.replayed,
                    _ => &mut self.refused.malformed,
                };
                *counter += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCMU packet of 20 ms: sequence `seq`, SSRC 0x11223344.
    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1122_3344u32.to_be_bytes());
        p.extend(std::iter::repeat_n(0xd5, 160));
        p
    }

    /// A receiver report of SSRC 0x11223344.
    fn rtcp() -> Vec<u8> {
        vec![0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44]
    }

    fn pair(profile: Profile) -> (Srtp, Srtp) {
        let (k, s) = profile.key_and_salt_len();
        let key: Vec<u8> = (0..k as u8).collect();
        let salt: Vec<u8> = (100..100 + s as u8).collect();
        (
            Srtp::new(profile, &key, &salt).unwrap(),
            Srtp::new(profile, &key, &salt).unwrap(),
        )
    }

    #[test]
    fn each_profile_protects_and_unprotects() {
        for profile in [
            Profile::AesCm128HmacSha1_80,
            Profile::AesCm128HmacSha1_32,
            Profile::AeadAes128Gcm,
            Profile::AeadAes256Gcm,
        ] {
            let (mut tx, mut rx) = pair(profile);
            for seq in [1u16, 2, 3] {
                let plain = rtp(seq);
                let sealed = tx.protect_rtp(&plain).unwrap();
                assert_ne!(
                    sealed[12..172],
                    plain[12..],
                    "{profile:?}: the payload is encrypted"
                );
                assert_eq!(rx.unprotect_rtp(&sealed).unwrap(), plain, "{profile:?}");
            }
            let sealed = tx.protect_rtcp(&rtcp()).unwrap();
            assert_eq!(rx.unprotect_rtcp(&sealed).unwrap(), rtcp(), "{profile:?}");
            assert_eq!(rx.refused(), Refusals::default());
        }
    }

    #[test]
    fn a_bad_tag_or_a_replay_is_dropped_and_counted() {
        let (mut tx, mut rx) = pair(Profile::AesCm128HmacSha1_80);
        let sealed = tx.protect_rtp(&rtp(7)).unwrap();
        let mut forged = sealed.clone();
        let last = forged.len() - 1;
        forged[last] ^= 0x01;
        assert_eq!(rx.unprotect_rtp(&forged), None);
        assert_eq!(rx.refused().auth, 1);
        assert!(
            rx.unprotect_rtp(&sealed).is_some(),
            "the real one still passes"
        );
        assert_eq!(rx.unprotect_rtp(&sealed), None, "but not twice");
        assert_eq!(rx.refused().replayed, 1);
        assert_eq!(rx.unprotect_rtp(&[0x80, 0, 0]), None);
        assert_eq!(rx.refused().malformed, 1);
        // SRTCP too; and GCM's tag.
        let mut srtcp = tx.protect_rtcp(&rtcp()).unwrap();
        srtcp[9] ^= 0x40;
        assert_eq!(rx.unprotect_rtcp(&srtcp), None);
        assert_eq!(rx.refused().auth, 2);
        let (mut gtx, mut grx) = pair(Profile::AeadAes128Gcm);
        let mut sealed = gtx.protect_rtp(&rtp(1)).unwrap();
        sealed[20] ^= 0x01;
        assert_eq!(grx.unprotect_rtp(&sealed), None);
        assert_eq!(grx.refused().auth, 1);
        // Under other keys.
        let (k, s) = Profile::AesCm128HmacSha1_80.key_and_salt_len();
        let mut other = Srtp::new(Profile::AesCm128HmacSha1_80, &vec![9; k], &vec![9; s]).unwrap();
        assert_eq!(other.unprotect_rtp(&tx.protect_rtp(&rtp(8)).unwrap()), None);
        assert_eq!(other.refused().auth, 1);
    }

    #[test]
    fn srtcp_that_says_it_is_not_encrypted_is_refused_whatever_its_tag() {
        for profile in [Profile::AesCm128HmacSha1_80, Profile::AeadAes128Gcm] {
            let (mut tx, mut rx) = pair(profile);
            let mut srtcp = tx.protect_rtcp(&rtcp()).unwrap();
            let tag = if profile == Profile::AesCm128HmacSha1_80 {
                10
            } else {
                0
            };
            let e = srtcp.len() - tag - 4;
            assert_ne!(srtcp[e] & 0x80, 0, "{profile:?}: E set by the sender");
            srtcp[e] &= 0x7f;
            assert_eq!(rx.unprotect_rtcp(&srtcp), None, "{profile:?}");
            assert_eq!(rx.refused().auth, 1, "{profile:?}");
        }
    }

    #[test]
    fn state_is_kept_for_so_many_ssrcs_and_no_more() {
        let (mut tx, _) = pair(Profile::AesCm128HmacSha1_80);
        for ssrc in 0..MAX_SSRCS as u32 {
            let mut p = rtp(1);
            p[8..12].copy_from_slice(&ssrc.to_be_bytes());
            assert!(tx.protect_rtp(&p).is_some());
        }
        let mut p = rtp(1);
        p[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(tx.protect_rtp(&p), None, "one SSRC too many");
        // Forged packets of new SSRCs fill the receiver's room; the known one still passes.
        let good = tx.protect_rtp(&rtp(2));
        assert!(good.is_none(), "0x11223344 was not among the first");
        let (mut tx, mut rx2) = pair(Profile::AesCm128HmacSha1_80);
        let first = tx.protect_rtp(&rtp(3)).unwrap();
        assert!(rx2.unprotect_rtp(&first).is_some());
        for ssrc in 0..MAX_SSRCS as u32 {
            let mut forged = first.clone();
            forged[8..12].copy_from_slice(&ssrc.to_be_bytes());
            assert_eq!(rx2.unprotect_rtp(&forged), None);
        }
        assert!(rx2
            .unprotect_rtp(&tx.protect_rtp(&rtp(4)).unwrap())
            .is_some());
    }

    #[test]
    fn wrong_key_lengths_are_refused() {
        assert!(Srtp::new(Profile::AesCm128HmacSha1_80, &[0; 15], &[0; 14]).is_err());
        assert!(Srtp::new(Profile::AeadAes128Gcm, &[0; 16], &[0; 14]).is_err());
    }
}
