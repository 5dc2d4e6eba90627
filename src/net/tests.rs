//! Tests of link/IP/TCP decoding on hand-built packets of every supported link type, and
//! property tests that no input panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::PacketBuilder;
use proptest::prelude::*;

use super::*;
use crate::capture::linktype;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const V4_A: [u8; 4] = [10, 0, 0, 1];
const V4_B: [u8; 4] = [10, 0, 0, 2];
const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// An IPv4 packet (no link header) carrying TCP 1234 → 80 with the given payload.
fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(V4_A, V4_B, 64)
        .tcp(1234, 80, 1000, 512)
        .ack(77)
        .psh();
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("build");
    v
}

fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(V6_A, V6_B, 33)
        .tcp(5555, 443, 42, 100)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("build");
    v
}

fn eth_ipv4_tcp(payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_A, V4_B, 64)
        .tcp(1234, 80, 1000, 512)
        .ack(77);
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("build");
    v
}

fn with_prefix(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(rest);
    v
}

fn sa4(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
}

fn sa6(ip: [u8; 16], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)
}

#[test]
fn ethernet_ipv4_fields() {
    let mut pkt = eth_ipv4_tcp(b"hello");
    // IPv4 identification lives at bytes 4..6 of the IP header.
    pkt[14 + 4..14 + 6].copy_from_slice(&0xbeefu16.to_be_bytes());
    let t = decode(linktype::ETHERNET, &pkt).expect("tcp");
    assert_eq!(t.src, sa4(V4_A, 1234));
    assert_eq!(t.dst, sa4(V4_B, 80));
    assert_eq!(t.seq, 1000);
    assert_eq!(t.ack, 77);
    assert!(t.flags.ack() && !t.flags.syn() && !t.flags.fin() && !t.flags.rst());
    assert_eq!(t.window, 512);
    assert_eq!(t.ttl, 64);
    assert_eq!(t.ip_id, Some(0xbeef));
    assert_eq!(t.payload, b"hello");
    assert_eq!(t.missing, 0);
}

#[test]
fn ipv6_fields() {
    let pkt = ipv6_tcp(b"abc");
    for lt in [
        linktype::RAW,
        linktype::RAW_DLT,
        linktype::RAW_DLT_OPENBSD,
        linktype::IPV6,
    ] {
        let t = decode(lt, &pkt).expect("tcp");
        assert_eq!(t.src, sa6(V6_A, 5555));
        assert_eq!(t.dst, sa6(V6_B, 443));
        assert!(t.flags.syn());
        assert_eq!(t.ttl, 33);
        assert_eq!(t.ip_id, None);
        assert_eq!(t.payload, b"abc");
    }
}

#[test]
fn raw_ip_links() {
    let pkt = ipv4_tcp(b"xyz");
    for lt in [
        linktype::RAW,
        linktype::RAW_DLT,
        linktype::RAW_DLT_OPENBSD,
        linktype::IPV4,
    ] {
        let t = decode(lt, &pkt).expect("tcp");
        assert_eq!(t.payload, b"xyz");
        assert!(t.flags.0 & TcpFlags::PSH != 0);
    }
    assert_eq!(
        decode(linktype::RAW, &[0x50; 40]).err(),
        Some(Skip::Malformed("IP version is neither 4 nor 6"))
    );
    assert!(matches!(
        decode(linktype::RAW, &[]),
        Err(Skip::Malformed(_))
    ));
}

#[test]
fn dlt_12_with_loopback_header() {
    // An OpenBSD DLT_LOOP capture written with the live DLT number 12.
    let pkt = with_prefix(&[0, 0, 0, 2], &ipv4_tcp(b"q"));
    assert_eq!(decode(linktype::RAW_DLT, &pkt).expect("tcp").payload, b"q");
}

#[test]
fn linux_sll_v1() {
    let b = PacketBuilder::linux_sll(
        etherparse::LinuxSllPacketType::OUTGOING,
        6,
        [1, 2, 3, 4, 5, 6, 0, 0],
    )
    .ipv4(V4_A, V4_B, 9)
    .tcp(1, 2, 3, 4);
    let mut pkt = Vec::new();
    b.write(&mut pkt, b"sll").expect("build");
    let t = decode(linktype::LINUX_SLL, &pkt).expect("tcp");
    assert_eq!(t.payload, b"sll");
    assert_eq!(t.ttl, 9);
    assert_eq!(
        decode(linktype::LINUX_SLL, &pkt[..15]).err(),
        Some(Skip::Malformed("Linux SLL header cut short"))
    );
}

#[test]
fn linux_sll_v2() {
    // protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address.
    let mut hdr = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6];
    hdr.extend_from_slice(&[1, 2, 3, 4, 5, 6, 0, 0]);
    assert_eq!(hdr.len(), 20);
    let pkt = with_prefix(&hdr, &ipv6_tcp(b"two"));
    let t = decode(linktype::LINUX_SLL2, &pkt).expect("tcp");
    assert_eq!(t.payload, b"two");
    assert_eq!(t.src, sa6(V6_A, 5555));
    // An ARP-ish protocol is not TCP, and a short header is malformed.
    let mut arp = pkt.clone();
    arp[..2].copy_from_slice(&[0x08, 0x06]);
    assert!(decode(linktype::LINUX_SLL2, &arp).is_err());
    assert_eq!(
        decode(linktype::LINUX_SLL2, &pkt[..19]).err(),
        Some(Skip::Malformed("Linux SLL2 header cut short"))
    );
}

#[test]
fn bsd_null_either_byte_order() {
    let v4 = ipv4_tcp(b"4");
    let v6 = ipv6_tcp(b"6");
    for af in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        assert_eq!(
            decode(linktype::NULL, &with_prefix(&af, &v4))
                .expect("v4")
                .payload,
            b"4"
        );
    }
    for af in [24u32, 28, 30] {
        for bytes in [af.to_le_bytes(), af.to_be_bytes()] {
            assert_eq!(
                decode(linktype::NULL, &with_prefix(&bytes, &v6))
                    .expect("v6")
                    .payload,
                b"6"
            );
        }
    }
    // AF_UNSPEC and friends are not IP.
    assert_eq!(
        decode(linktype::NULL, &with_prefix(&7u32.to_le_bytes(), &v4)).err(),
        Some(Skip::NotTcp)
    );
    assert_eq!(
        decode(linktype::NULL, &[2, 0, 0]).err(),
        Some(Skip::Malformed("loopback header cut short"))
    );
}

#[test]
fn bsd_loop_network_order() {
    let v4 = ipv4_tcp(b"L");
    assert_eq!(
        decode(linktype::LOOP, &with_prefix(&2u32.to_be_bytes(), &v4))
            .expect("v4")
            .payload,
        b"L"
    );
    let v6 = ipv6_tcp(b"M");
    assert_eq!(
        decode(linktype::LOOP, &with_prefix(&30u32.to_be_bytes(), &v6))
            .expect("v6")
            .payload,
        b"M"
    );
    // Host order is not accepted for LOOP.
    assert_eq!(
        decode(linktype::LOOP, &with_prefix(&2u32.to_le_bytes(), &v4)).err(),
        Some(Skip::NotTcp)
    );
}

#[test]
fn vlan_and_qinq() {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(etherparse::VlanId::try_new(100).expect("id"));
    let mut pkt = Vec::new();
    b.ipv4(V4_A, V4_B, 1)
        .tcp(1, 2, 3, 4)
        .write(&mut pkt, b"vlan")
        .expect("build");
    assert_eq!(
        decode(linktype::ETHERNET, &pkt).expect("tcp").payload,
        b"vlan"
    );

    // 802.1ad outer tag, then 802.1Q, then IPv4: splice the tags in by hand.
    let plain = eth_ipv4_tcp(b"qinq");
    let mut q = plain[..12].to_vec();
    q.extend_from_slice(&[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00]);
    q.extend_from_slice(&plain[14..]);
    assert_eq!(
        decode(linktype::ETHERNET, &q).expect("tcp").payload,
        b"qinq"
    );
    // A tag cut short is malformed, not a panic.
    assert_eq!(
        decode(linktype::ETHERNET, &q[..16]).err(),
        Some(Skip::Malformed("VLAN tag cut short"))
    );
}

#[test]
fn snaplen_cut_counts_missing() {
    let payload = [0x55u8; 100];
    let pkt = eth_ipv4_tcp(&payload);
    let headers = 14 + 20 + 20;
    for keep in [0usize, 1, 30, 99, 100] {
        let t = decode(linktype::ETHERNET, &pkt[..headers + keep]).expect("tcp");
        assert_eq!(t.payload.len(), keep);
        assert_eq!(t.missing as usize, 100 - keep);
    }
    let v6 = ipv6_tcp(&payload);
    let t = decode(linktype::IPV6, &v6[..40 + 20 + 7]).expect("tcp");
    assert_eq!((t.payload.len(), t.missing), (7, 93));
    // Cut inside the TCP header: no segment to give.
    assert_eq!(
        decode(linktype::ETHERNET, &pkt[..headers - 1]).err(),
        Some(Skip::Malformed("TCP header cut short"))
    );
    assert!(matches!(
        decode(linktype::ETHERNET, &pkt[..14 + 10]),
        Err(Skip::Malformed(_))
    ));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut pkt = eth_ipv4_tcp(b"hi");
    pkt.resize(60, 0);
    pkt.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // an FCS, also not payload
    let t = decode(linktype::ETHERNET, &pkt).expect("tcp");
    assert_eq!(t.payload, b"hi");
    assert_eq!(t.missing, 0);
}

#[test]
fn ip_fragments_are_skipped() {
    let mut first = ipv4_tcp(b"frag");
    first[6] = 0x20; // more fragments
    assert_eq!(decode(linktype::RAW, &first).err(), Some(Skip::IpFragment));
    let mut later = ipv4_tcp(b"frag");
    later[6..8].copy_from_slice(&[0x00, 0x10]); // offset 16 * 8
    assert_eq!(decode(linktype::RAW, &later).err(), Some(Skip::IpFragment));
    // Don't-fragment alone is an ordinary packet.
    let mut df = ipv4_tcp(b"frag");
    df[6] = 0x40;
    assert!(decode(linktype::RAW, &df).is_ok());

    // IPv6 with a fragment header announcing more fragments.
    let tcp_part = &ipv6_tcp(b"x")[40..];
    let mut v6 = ipv6_tcp(b"x")[..40].to_vec();
    v6[6] = 44;
    let pl = (8 + tcp_part.len()) as u16;
    v6[4..6].copy_from_slice(&pl.to_be_bytes());
    v6.extend_from_slice(&[6, 0, 0x00, 0x01, 0, 0, 0, 9]);
    v6.extend_from_slice(tcp_part);
    assert_eq!(decode(linktype::IPV6, &v6).err(), Some(Skip::IpFragment));
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let full = ipv6_tcp(b"ext");
    let tcp_part = &full[40..];
    let mut v6 = full[..40].to_vec();
    v6[6] = 0; // hop-by-hop first
    let pl = (8 + 8 + tcp_part.len()) as u16;
    v6[4..6].copy_from_slice(&pl.to_be_bytes());
    // Hop-by-hop → destination options → TCP, each 8 bytes with PadN.
    v6.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    v6.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    v6.extend_from_slice(tcp_part);
    let t = decode(linktype::IPV6, &v6).expect("tcp");
    assert_eq!(t.payload, b"ext");
    assert_eq!(t.missing, 0);
    let cut = decode(linktype::IPV6, &v6[..v6.len() - 2]).expect("tcp");
    assert_eq!((cut.payload, cut.missing), (&b"e"[..], 2));
    assert_eq!(
        decode(linktype::IPV6, &v6[..44]).err(),
        Some(Skip::Malformed("IPv6 extension header cut short"))
    );
}

#[test]
fn lying_lengths_are_malformed() {
    // TCP data offset 4 (< 5).
    let mut pkt = ipv4_tcp(b"abc");
    pkt[20 + 12] = 0x40;
    assert_eq!(
        decode(linktype::RAW, &pkt).err(),
        Some(Skip::Malformed("TCP data offset below 5"))
    );
    // TCP data offset 15 (60 bytes) beyond a complete packet.
    let mut pkt = ipv4_tcp(b"abc");
    pkt[20 + 12] = 0xf0;
    assert_eq!(
        decode(linktype::RAW, &pkt).err(),
        Some(Skip::Malformed("TCP header extends beyond the IP length"))
    );
    // IPv4 total length smaller than the header.
    let mut pkt = ipv4_tcp(b"abc");
    pkt[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        decode(linktype::RAW, &pkt).err(),
        Some(Skip::Malformed("IPv4 total length shorter than its header"))
    );
    // IPv4 total length covering only part of the TCP header.
    let mut pkt = ipv4_tcp(b"abc");
    pkt[2..4].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(
        decode(linktype::RAW, &pkt).err(),
        Some(Skip::Malformed("TCP header extends beyond the IP length"))
    );
    // IHL below 5.
    let mut pkt = ipv4_tcp(b"abc");
    pkt[0] = 0x44;
    assert!(matches!(
        decode(linktype::RAW, &pkt),
        Err(Skip::Malformed(_))
    ));
}

#[test]
fn tso_zero_total_length_trusts_capture() {
    let mut pkt = ipv4_tcp(b"offloaded");
    pkt[2..4].copy_from_slice(&[0, 0]);
    let t = decode(linktype::RAW, &pkt).expect("tcp");
    assert_eq!((t.payload, t.missing), (&b"offloaded"[..], 0));
}

#[test]
fn not_tcp() {
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_A, V4_B, 1)
        .udp(53, 53)
        .write(&mut udp, b"dns")
        .expect("build");
    assert_eq!(decode(linktype::ETHERNET, &udp).err(), Some(Skip::NotTcp));
    let mut arp = eth_ipv4_tcp(b"");
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(decode(linktype::ETHERNET, &arp).err(), Some(Skip::NotTcp));
    let mut ipx = eth_ipv4_tcp(b"");
    ipx[12..14].copy_from_slice(&[0x81, 0x37]);
    assert_eq!(decode(linktype::ETHERNET, &ipx).err(), Some(Skip::NotTcp));
    assert_eq!(decode(147, &arp).err(), Some(Skip::UnsupportedLink(147)));
    assert_eq!(
        decode(linktype::ETHERNET, &arp[..13]).err(),
        Some(Skip::Malformed("Ethernet header cut short"))
    );
}

/// The decoding shortcut alone.
fn shortcut(lt: u32, data: &[u8]) -> Option<TcpPacket<'_>> {
    link::network(lt, data).and_then(|(et, net)| ip_tcp(et, net))
}

/// A link header of type `lt` announcing `ether_type` where the type can say it (random bytes
/// of a plausible length for the others; none for raw IP).
fn link_header(lt: u32, ether_type: u16) -> Vec<u8> {
    let et = ether_type.to_be_bytes();
    match lt {
        linktype::ETHERNET => with_prefix(&[0; 12], &et),
        linktype::LINUX_SLL => with_prefix(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0], &et),
        linktype::LINUX_SLL2 => {
            with_prefix(&et, &[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0])
        }
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => Vec::new(),
        _ => et.repeat(2),
    }
}

const ALL_LINKS: [u32; 11] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::RAW_DLT,
    linktype::RAW_DLT_OPENBSD,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    147,
];

/// Checks what must hold for any decoded segment.
fn consistent(data: &[u8], t: &TcpPacket<'_>) {
    let start = t.payload.as_ptr() as usize - data.as_ptr() as usize;
    assert!(start + t.payload.len() <= data.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), li in 0..ALL_LINKS.len()) {
        if let Ok(t) = decode(ALL_LINKS[li], &data) {
            consistent(&data, &t);
        }
    }

    #[test]
    fn plausible_headers_never_panic(
        mut data in proptest::collection::vec(any::<u8>(), 0..128),
        v6 in any::<bool>(),
        li in 0..ALL_LINKS.len(),
    ) {
        // Steer random bytes into IP and TCP parsing: version nibble and TCP protocol set.
        if let Some(b) = data.first_mut() {
            *b = if v6 { 0x60 | (*b & 0x0f) } else { 0x45 };
        }
        if let Some(b) = data.get_mut(if v6 { 6 } else { 9 }) {
            *b = 6;
        }
        if let Ok(t) = decode(ALL_LINKS[li], &data) {
            consistent(&data, &t);
        }
    }

    #[test]
    fn the_shortcut_agrees_with_the_general_way(
        mut ip in proptest::collection::vec(any::<u8>(), 0..120),
        v6 in any::<bool>(),
        ether_type in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8100), any::<u16>()],
        inner in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8100), any::<u16>()],
        li in 0..ALL_LINKS.len(),
        mut real in proptest::collection::vec(any::<u8>(), 0..80),
        cut in 0usize..200,
    ) {
        // Random IP-looking bytes (version, TCP protocol and a small header length steered in)
        // behind a link header of each kind, and real packets cut anywhere: the shortcut either
        // declines or says what the general path says.
        let lt = ALL_LINKS[li];
        if let Some(b) = ip.first_mut() {
            *b = if v6 { 0x60 | (*b & 0x0f) } else { 0x40 | (*b % 3 + 5) };
        }
        if let Some(b) = ip.get_mut(if v6 { 6 } else { 9 }) {
            *b = 6;
        }
        if ether_type == 0x8100 {
            ip = with_prefix(&[&[0, 7][..], &inner.to_be_bytes()].concat(), &ip);
        }
        let random = with_prefix(&link_header(lt, ether_type), &ip);
        real = eth_ipv4_tcp(&real);
        real = with_prefix(&link_header(lt, 0x0800), real.get(14..).unwrap_or_default());
        real.truncate(cut);
        for data in [&random, &real] {
            let general = link::slice(lt, data).and_then(|p| tcp_of(&p));
            if let Some(fast) = shortcut(lt, data) {
                prop_assert_eq!(format!("{:?}", Ok::<_, Skip>(fast)), format!("{general:?}"));
            }
            prop_assert_eq!(format!("{:?}", decode(lt, data)), format!("{general:?}"));
        }
    }

    #[test]
    fn any_cut_of_a_real_packet_is_safe(payload in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..400) {
        let pkt = eth_ipv4_tcp(&payload);
        let data = &pkt[..cut.min(pkt.len())];
        match decode(linktype::ETHERNET, data) {
            Ok(t) => {
                consistent(data, &t);
                prop_assert_eq!(t.payload.len() + t.missing as usize, payload.len());
                prop_assert_eq!(t.payload, &payload[..t.payload.len()]);
            }
            Err(e) => {
                prop_assert!(data.len() < 54, "full headers present but {:?}", e);
            }
        }
    }
}

/// Every packet of every sample capture (real peers on loopback, Ethernet-framed) and of the
/// public corpus decodes the same through the shortcut as through the general path; the
/// samples' TCP packets take the shortcut, and so do they when re-framed as a switch's mirror
/// port (one VLAN tag), `tcpdump -i any` (Linux cooked v1 and v2) or raw IP would give them,
/// with the same segment.
#[test]
fn the_shortcut_agrees_on_real_captures() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [root.join("samples"), root.join("../shared/corpus")] {
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                    files.push(p);
                }
            }
        }
    }
    let (mut ethernet_tcp, mut taken) = (0u64, 0u64);
    for f in &files {
        let Ok(mut r) = crate::capture::CaptureReader::open(f) else {
            continue;
        };
        let sample = f.starts_with(root.join("samples"));
        while let Ok(Some(p)) = r.next_packet() {
            let general = link::slice(p.linktype, p.data).and_then(|s| tcp_of(&s));
            let via = format!("{:?}", decode(p.linktype, p.data));
            assert_eq!(via, format!("{general:?}"), "{}", f.display());
            let fast = shortcut(p.linktype, p.data);
            if let Some(t) = &fast {
                assert_eq!(format!("{:?}", Ok::<_, Skip>(*t)), format!("{general:?}"));
            }
            if !(sample && p.linktype == linktype::ETHERNET && general.is_ok()) {
                continue;
            }
            ethernet_tcp += 1;
            taken += u64::from(fast.is_some());
            let (Some(et), Some(ip)) = (p.data.get(12..14), p.data.get(14..)) else {
                continue;
            };
            let et = u16::from_be_bytes([et[0], et[1]]);
            let mut vlan = p.data.to_vec();
            vlan.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
            for (lt, data) in [
                (linktype::ETHERNET, vlan),
                (
                    linktype::LINUX_SLL,
                    with_prefix(&link_header(linktype::LINUX_SLL, et), ip),
                ),
                (
                    linktype::LINUX_SLL2,
                    with_prefix(&link_header(linktype::LINUX_SLL2, et), ip),
                ),
                (linktype::RAW, ip.to_vec()),
            ] {
                let again = shortcut(lt, &data);
                assert!(
                    again.is_some(),
                    "{} re-framed as link type {lt}",
                    f.display()
                );
                assert_eq!(format!("{again:?}"), format!("{fast:?}"));
            }
        }
    }
    assert!(
        ethernet_tcp >= 500,
        "only {ethernet_tcp} Ethernet TCP packets in the samples"
    );
    assert_eq!(taken, ethernet_tcp);
}
