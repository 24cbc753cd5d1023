//! Tests of QUIC Initial reading: the RFC 9001 and RFC 9369 appendix A vectors, and
//! packets sealed here by a test-only encryptor (split CRYPTO, coalescing, hostile names).

use super::*;
use crate::Transport;
use crate::tls::hello::tests::{client_hello, sni_ext};
use hex_literal::hex;
use std::net::{IpAddr, Ipv4Addr};

const RFC_DCID: [u8; 8] = hex!("8394c8f03e515708");

/// RFC 9001 appendix A.2: the client Initial, protected (1200 bytes).
const RFC9001_CLIENT_INITIAL: [u8; 1200] = hex!(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934"
);

/// RFC 9001 appendix A.3: the server Initial, protected with the server's keys.
const RFC9001_SERVER_INITIAL: [u8; 135] = hex!(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee"
);

/// RFC 9369 appendix A.2: the QUIC v2 client Initial, protected (1200 bytes).
const RFC9369_CLIENT_INITIAL: [u8; 1200] = hex!(
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc"
);

/// The start of the unprotected payload of both appendix A.2 packets: a CRYPTO frame
/// (offset 0, 241 bytes) with the ClientHello.
const RFC_PLAIN_PREFIX: [u8; 16] = hex!("060040f1010000ed0303ebf8fa56f129");

fn packet(payload: &[u8]) -> Packet<'_> {
    Packet {
        ts_ns: 0,
        src_mac: Some([2, 0, 0, 0, 0, 1]),
        dst_mac: None,
        src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(142, 250, 1, 1)),
        src_port: 50000,
        dst_port: 443,
        transport: Transport::Udp,
        payload,
    }
}

/// Feeds datagrams (from one client port) to `r`: the raw server names read.
fn feed(r: &mut Reassembly, datagrams: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    for d in datagrams {
        r.read(&packet(d), |name| names.push(name.to_vec()));
    }
    names
}

fn run(datagrams: &[&[u8]]) -> Vec<Vec<u8>> {
    feed(&mut Reassembly::default(), datagrams)
}

#[test]
fn rfc9001_keys() {
    let keys = client_keys(Version::V1, &RFC_DCID);
    assert_eq!(
        keys,
        Some(Keys {
            key: hex!("1f369613dd76d5467730efcbe3b1a22d"),
            iv: hex!("fa044b2f42a3fd3b46fb255c"),
            hp: hex!("9f50449e04a0e810283a1e9933adedd2"),
        })
    );
}

#[test]
fn rfc9369_keys() {
    let keys = client_keys(Version::V2, &RFC_DCID);
    assert_eq!(
        keys,
        Some(Keys {
            key: hex!("8b1a0bc121284290a29e0971b5cd045d"),
            iv: hex!("91f73e2351d8fa91660e909f"),
            hp: hex!("45b95e15235d6f45a6b19cbcb0294ba9"),
        })
    );
}

#[test]
fn rfc_client_initials_open_and_name_example_com() {
    for (version, datagram) in [
        (Version::V1, &RFC9001_CLIENT_INITIAL),
        (Version::V2, &RFC9369_CLIENT_INITIAL),
    ] {
        let mut seen = Vec::new();
        initials(datagram, |i| {
            seen.push((i.version, i.dcid.to_vec(), i.pn_offset))
        });
        assert_eq!(seen, vec![(version, RFC_DCID.to_vec(), 18)]);
        let keys = client_keys(version, &RFC_DCID).unwrap_or_else(|| panic!("keys"));
        let plain = open(&keys, datagram, 18).unwrap_or_default();
        assert_eq!(plain.len(), 1200 - 22 - 16, "{version:?}");
        assert_eq!(plain.get(..16), Some(&RFC_PLAIN_PREFIX[..]));
        assert_eq!(run(&[datagram]), vec![b"example.com".to_vec()]);
    }
}

#[test]
fn a_server_initial_is_skipped() {
    let mut r = Reassembly::default();
    assert!(feed(&mut r, &[&RFC9001_SERVER_INITIAL]).is_empty());
    assert_eq!(r.pending(), 0);
    // A damaged client Initial does not open either.
    let mut bad = RFC9001_CLIENT_INITIAL;
    if let Some(b) = bad.get_mut(600) {
        *b ^= 1;
    }
    assert!(feed(&mut r, &[&bad]).is_empty());
    assert_eq!(r.pending(), 0);
}

/// A test-only sealer: a client Initial of `version` to `dcid` with packet number `pn`
/// (two bytes on the wire) carrying `frames`, padded with PADDING to at least `min` bytes.
fn seal(version: Version, dcid: &[u8], pn: u16, frames: &[u8], min: usize) -> Vec<u8> {
    seal_to(version, dcid, dcid, pn, frames, min)
}

/// [`seal`] with keys from `key_dcid` on a packet sent to `dcid`.
fn seal_to(
    version: Version,
    key_dcid: &[u8],
    dcid: &[u8],
    pn: u16,
    frames: &[u8],
    min: usize,
) -> Vec<u8> {
    let keys = client_keys(version, key_dcid).unwrap_or_else(|| panic!("keys"));
    let scid = hex!("c0ffee");
    let mut payload = frames.to_vec();
    let head_len = 1 + 4 + 1 + dcid.len() + 1 + scid.len() + 1 + 2 + 2;
    if head_len + payload.len() + 16 < min {
        payload.resize(min - head_len - 16, 0);
    }
    let wire = match version {
        Version::V1 => 1_u32,
        Version::V2 => 0x6b33_43cf,
        Version::Draft29 => 0xff00_001d,
    };
    let mut header = vec![0xc0 | (version.initial_type() << 4) | 0x01];
    header.extend(wire.to_be_bytes());
    header.push(u8::try_from(dcid.len()).unwrap_or(0));
    header.extend(dcid);
    header.push(u8::try_from(scid.len()).unwrap_or(0));
    header.extend(scid);
    header.push(0); // token length
    let length = u16::try_from(2 + payload.len() + 16).unwrap_or(0);
    header.extend((0x4000 | length).to_be_bytes());
    let pn_offset = header.len();
    header.extend(pn.to_be_bytes());
    let mut nonce = keys.iv;
    for (n, p) in nonce.iter_mut().skip(4).zip(u64::from(pn).to_be_bytes()) {
        *n ^= p;
    }
    let aead = Aes128Gcm::new_from_slice(&keys.key).unwrap_or_else(|_| panic!("key"));
    let tag = aead
        .encrypt_inout_detached(&Nonce::from(nonce), &header, payload.as_mut_slice().into())
        .unwrap_or_else(|_| panic!("seal"));
    let mut packet = header;
    packet.extend(payload);
    packet.extend(tag.as_slice());
    let hp = Aes128::new_from_slice(&keys.hp).unwrap_or_else(|_| panic!("hp"));
    let sample = packet
        .get(pn_offset + 4..pn_offset + 20)
        .unwrap_or_default();
    let mut mask = aes::Block::try_from(sample).unwrap_or_else(|_| panic!("sample"));
    hp.encrypt_block(&mut mask);
    if let Some(first) = packet.first_mut() {
        *first ^= mask[0] & 0x0f;
    }
    for i in 0..2 {
        if let Some(b) = packet.get_mut(pn_offset + i) {
            *b ^= mask[1 + i];
        }
    }
    packet
}

/// A CRYPTO frame of `data` at `offset`.
fn crypto(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend((0x8000_0000_u32 | u32::try_from(offset).unwrap_or(0)).to_be_bytes());
    f.extend((0x4000_u16 | u16::try_from(data.len()).unwrap_or(0)).to_be_bytes());
    f.extend(data);
    f
}

/// A browser-sized ClientHello naming `name`.
fn big_hello(name: &[u8]) -> Vec<u8> {
    client_hello(&[(0x0033, vec![0x42; 1250]), sni_ext(name)])
}

#[test]
fn sealer_round_trips_the_rfc_packet_shape() {
    let hs = client_hello(&[sni_ext(b"own.example")]);
    for version in [Version::V1, Version::V2, Version::Draft29] {
        let d = seal(version, &RFC_DCID, 0, &crypto(0, &hs), 1200);
        assert_eq!(d.len(), 1200);
        assert_eq!(run(&[&d]), vec![b"own.example".to_vec()], "{version:?}");
    }
}

#[test]
fn crypto_split_over_two_packets_out_of_order_with_ping_and_ack() {
    let hs = big_hello(b"split.example");
    let (a, b) = hs.split_at(900);
    let dcid = hex!("0011223344556677");
    // Chrome-like scattering: the second half first, frames out of order inside a packet.
    let mut f1 = vec![0x01]; // PING
    f1.extend(crypto(900 + 100, &b[100..]));
    f1.extend([0x02, 0x00, 0x00, 0x00, 0x00]); // ACK
    f1.extend(crypto(900, &b[..100]));
    let mut f2 = crypto(400, &a[400..]);
    f2.extend([0x00, 0x00, 0x01]);
    f2.extend(crypto(0, &a[..400]));
    let p1 = seal(Version::V1, &dcid, 0, &f1, 1200);
    let p2 = seal(Version::V1, &dcid, 1, &f2, 1200);
    let mut r = Reassembly::default();
    assert!(feed(&mut r, &[&p1]).is_empty());
    assert_eq!(feed(&mut r, &[&p2]), vec![b"split.example".to_vec()]);
    // A retransmission adds nothing: the connection is done.
    assert!(feed(&mut r, &[&p1, &p2]).is_empty());
    assert_eq!(r.pending(), 1);
}

#[test]
fn coalesced_packets_are_walked_by_length() {
    let hs = client_hello(&[sni_ext(b"coalesced.example")]);
    let dcid = hex!("0102030405060708");
    let (a, b) = hs.split_at(50);
    // A Handshake packet (opaque here) between two Initials, zeros after.
    let mut d = seal(Version::V2, &dcid, 0, &crypto(0, a), 0);
    d.extend(hex!("f06b3343cf04010203040003aabbcc"));
    d.extend(seal(Version::V2, &dcid, 1, &crypto(50, b), 0));
    d.extend([0; 64]);
    assert_eq!(run(&[&d]), vec![b"coalesced.example".to_vec()]);
}

#[test]
fn later_packets_with_the_servers_cid_use_the_first_keys() {
    // The client's second Initial, sent after the server's, goes to the server's
    // chosen CID but is still protected with keys from the first one.
    let hs = big_hello(b"newcid.example");
    let (a, b) = hs.split_at(1000);
    let first = hex!("a1a2a3a4a5a6a7a8");
    let p1 = seal(Version::V1, &first, 0, &crypto(0, a), 1200);
    let p2 = seal_to(
        Version::V1,
        &first,
        &hex!("5555"),
        1,
        &crypto(1000, b),
        1200,
    );
    let mut r = Reassembly::default();
    assert!(feed(&mut r, &[&p1]).is_empty());
    assert_eq!(feed(&mut r, &[&p2]), vec![b"newcid.example".to_vec()]);
}

#[test]
fn hostile_names_come_out_raw() {
    for name in [
        &b"<script>alert(1)</script>"[..],
        "evil\u{202e}moc.com".as_bytes(),
        b"a\0b",
        b"\xff\xfe\x80",
        &[b'a'; 3000],
    ] {
        let hs = big_hello(name);
        let mid = hs.len() / 2;
        let (a, b) = hs.split_at(mid);
        let dcid = hex!("0909090909090909");
        let p1 = seal(Version::V1, &dcid, 0, &crypto(0, a), 1200);
        let p2 = seal(Version::V1, &dcid, 1, &crypto(mid, b), 1200);
        assert_eq!(run(&[&p1, &p2]), vec![name.to_vec()]);
    }
}

#[test]
fn crypto_past_the_bound_gives_up() {
    let dcid = hex!("0a0a0a0a0a0a0a0a");
    let far = seal(Version::V1, &dcid, 0, &crypto(MAX_CRYPTO, b"x"), 1200);
    let mut r = Reassembly::default();
    assert!(feed(&mut r, &[&far]).is_empty());
    // Then the hello itself: too late, the connection was given up.
    let hs = client_hello(&[sni_ext(b"late.example")]);
    let p = seal(Version::V1, &dcid, 1, &crypto(0, &hs), 1200);
    assert!(feed(&mut r, &[&p]).is_empty());
    // A hello that says it is bigger than the bound is given up too.
    let mut huge = vec![1, 0, 0x50, 0x00];
    huge.extend([0; 100]);
    let p = seal(Version::V1, &hex!("0b0b0b0b"), 0, &crypto(0, &huge), 1200);
    assert!(run(&[&p]).is_empty());
}

#[test]
fn eviction_keeps_at_most_max_conns() {
    let hs = big_hello(b"evict.example");
    let dcid = hex!("0c0c0c0c0c0c0c0c");
    let first_half = seal(Version::V1, &dcid, 0, &crypto(0, &hs[..500]), 1200);
    let mut r = Reassembly::default();
    for port in 0..(MAX_CONNS as u16 + 100) {
        let mut p = packet(&first_half);
        p.src_port = port;
        r.read(&p, |_| {});
        assert!(r.pending() <= MAX_CONNS);
    }
    assert_eq!(r.pending(), MAX_CONNS);
    let src = packet(&[]).src;
    let dst = packet(&[]).dst;
    assert!(r.conns.get(&(src, 0, dst, 443)).is_none());
    assert!(
        r.conns
            .get(&(src, MAX_CONNS as u16 + 99, dst, 443))
            .is_some()
    );
}

#[test]
fn every_prefix_and_damage_never_panics() {
    let mut r = Reassembly::default();
    let hs = client_hello(&[sni_ext("\u{202e}<b>\0".as_bytes())]);
    let sealed = seal(Version::V1, &RFC_DCID, 0, &crypto(0, &hs), 1200);
    for d in [
        &RFC9001_CLIENT_INITIAL[..],
        &RFC9369_CLIENT_INITIAL,
        &sealed,
    ] {
        for n in 0..d.len() {
            feed(&mut r, &[&d[..n]]);
        }
        for i in 0..64 {
            let mut bad = d.to_vec();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0xa5;
            }
            feed(&mut r, &[&bad]);
        }
    }
    // Frames: every prefix of a plaintext, and junk.
    let mut plain = crypto(0, &hs);
    plain.extend([
        0x03, 0x40, 0x01, 0x00, 0x02, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x1c,
    ]);
    for n in 0..plain.len() {
        crypto_frames(&plain[..n], |_, _| {});
    }
    crypto_frames(&[0xff; 40], |_, _| {});
    assert!(r.pending() <= MAX_CONNS);
}

#[test]
fn other_udp_is_cheaply_ignored() {
    for d in [
        &b""[..],
        b"\x40abc",
        b"\x00\x01",
        b"\xc0\x00\x00\x00\x02\x08",
    ] {
        assert!(run(&[d]).is_empty());
    }
}

/// A Google QUIC Q046 client hello in one packet (the shape of the corpus' first packet,
/// shortened): SNI among other tags.
fn q046(sni: &[u8]) -> Vec<u8> {
    let mut d = hex!("c3 51303436 50 eacfe6e706df272d 00000004 60da58929f6839d0860efc58").to_vec();
    let pad = 40_u32;
    let sni_end = pad + u32::try_from(sni.len()).unwrap_or(0);
    let mut chlo = b"CHLO".to_vec();
    chlo.extend([3, 0, 0, 0]);
    chlo.extend(b"PAD\0");
    chlo.extend(pad.to_le_bytes());
    chlo.extend(b"SNI\0");
    chlo.extend(sni_end.to_le_bytes());
    chlo.extend(b"VER\0");
    chlo.extend((sni_end + 4).to_le_bytes());
    chlo.extend([b'-'; 40]);
    chlo.extend(sni);
    chlo.extend(b"Q046");
    d.extend([0xa4, 0x01, 0x04, 0x00]);
    d.extend(u16::try_from(chlo.len()).unwrap_or(0).to_be_bytes());
    d.extend(chlo);
    d
}

#[test]
fn gquic_q046_chlo_sni() {
    assert_eq!(
        run(&[&q046(b"play.google.com")]),
        vec![b"play.google.com".to_vec()]
    );
    let d = q046(b"play.google.com");
    for n in 0..d.len() {
        let _ = gquic_sni(&d[..n]);
    }
    // A SNI end offset past the values: nothing.
    let mut bad = d.clone();
    if let Some(p) = bad.windows(4).position(|w| w == b"SNI\0")
        && let Some(b) = bad.get_mut(p + 5)
    {
        *b = 0xff;
    }
    assert!(run(&[&bad]).is_empty());
}
