//! Link-layer headers: takes a packet's bytes and its link type and gives etherparse's lax slice
//! of everything from the network layer down, or why the link header cannot be read; for the
//! common link headers, [`network`] gives the network layer's EtherType and bytes directly.
//!
//! etherparse knows Ethernet (with VLAN/QinQ tags) and raw IP; the Linux cooked headers and the
//! BSD loopback address-family headers are read here and the rest is handed over by EtherType.

use etherparse::{EtherType, Ethernet2Slice, LaxSlicedPacket, SingleVlanSlice};

use super::Skip;
use crate::capture::linktype;

/// Linux SLL v1 header: packet type, ARPHRD, address length, 8 address bytes, protocol.
const SLL_LEN: usize = 16;
/// Linux SLL v2 header: protocol, reserved, interface index, ARPHRD, packet type, address length,
/// 8 address bytes.
const SLL2_LEN: usize = 20;
/// BSD loopback (NULL/LOOP) header: one 32-bit address family.
const LOOP_LEN: usize = 4;

const AF_INET: u32 = 2;

/// The EtherType of the network layer and its bytes, for the link headers most captures have:
/// Ethernet with no VLAN tag or one (a switch's mirror port), Linux cooked v1 and v2
/// (`tcpdump -i any`), raw IP. `None` for anything else or anything cut short; [`slice`] reads
/// every link type and says what is wrong. For the same bytes both find the same network layer.
pub(crate) fn network(lt: u32, data: &[u8]) -> Option<(EtherType, &[u8])> {
    match lt {
        linktype::ETHERNET => {
            let eth = Ethernet2Slice::from_slice_without_fcs(data).ok()?;
            match eth.ether_type() {
                EtherType::VLAN_TAGGED_FRAME => {
                    let vlan = SingleVlanSlice::from_slice(eth.payload_slice()).ok()?;
                    Some((vlan.ether_type(), vlan.payload_slice()))
                }
                et => Some((et, eth.payload_slice())),
            }
        }
        linktype::LINUX_SLL => {
            let (hdr, rest) = data.split_at_checked(SLL_LEN)?;
            Some((EtherType(be16(hdr, 14)), rest))
        }
        linktype::LINUX_SLL2 => {
            let (hdr, rest) = data.split_at_checked(SLL2_LEN)?;
            Some((EtherType(be16(hdr, 0)), rest))
        }
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => match data.first().map(|b| b >> 4) {
            Some(4) => Some((EtherType::IPV4, data)),
            Some(6) => Some((EtherType::IPV6, data)),
            _ => None,
        },
        _ => None,
    }
}

/// Slices a packet of the given link type down to the network layer and below.
pub(crate) fn slice(lt: u32, data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    match lt {
        linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data)
            .map_err(|_| Skip::Malformed("Ethernet header cut short")),
        linktype::LINUX_SLL => {
            let (hdr, rest) = split(data, SLL_LEN, "Linux SLL header cut short")?;
            Ok(LaxSlicedPacket::from_ether_type(
                EtherType(be16(hdr, 14)),
                rest,
            ))
        }
        linktype::LINUX_SLL2 => {
            let (hdr, rest) = split(data, SLL2_LEN, "Linux SLL2 header cut short")?;
            Ok(LaxSlicedPacket::from_ether_type(
                EtherType(be16(hdr, 0)),
                rest,
            ))
        }
        linktype::NULL => {
            let (hdr, rest) = split(data, LOOP_LEN, "loopback header cut short")?;
            // The family is in the byte order of the machine that captured, which the file does
            // not record; the two readings cannot both look like an address family.
            let af = ether_type_for_af(be32(hdr)).or_else(|| ether_type_for_af(le32(hdr)));
            Ok(match af {
                Some(et) => LaxSlicedPacket::from_ether_type(et, rest),
                None => return Err(Skip::NotTcp),
            })
        }
        linktype::LOOP => {
            let (hdr, rest) = split(data, LOOP_LEN, "loopback header cut short")?;
            match ether_type_for_af(be32(hdr)) {
                Some(et) => Ok(LaxSlicedPacket::from_ether_type(et, rest)),
                None => Err(Skip::NotTcp),
            }
        }
        linktype::RAW_DLT | linktype::RAW_DLT_OPENBSD => {
            // On OpenBSD DLT 12 is DLT_LOOP, so a file written there with the live DLT number
            // carries a network-order family instead of an IP header.
            let version = data.first().map_or(0, |b| b >> 4);
            if version != 4
                && version != 6
                && let Some(et) = data
                    .get(..LOOP_LEN)
                    .and_then(|h| ether_type_for_af(be32(h)))
            {
                return Ok(LaxSlicedPacket::from_ether_type(
                    et,
                    data.get(LOOP_LEN..).unwrap_or(&[]),
                ));
            }
            from_ip(data)
        }
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => from_ip(data),
        other => Err(Skip::UnsupportedLink(other)),
    }
}

fn from_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, Skip> {
    use etherparse::err::ip::{HeaderError, LaxHeaderSliceError};
    LaxSlicedPacket::from_ip(data).map_err(|e| match e {
        LaxHeaderSliceError::Len(_) => Skip::Malformed("IP header cut short"),
        LaxHeaderSliceError::Content(HeaderError::UnsupportedIpVersion { .. }) => {
            Skip::Malformed("IP version is neither 4 nor 6")
        }
        LaxHeaderSliceError::Content(_) => Skip::Malformed("IPv4 header length below 20"),
    })
}

/// Maps a BSD address family to the EtherType etherparse understands.
fn ether_type_for_af(af: u32) -> Option<EtherType> {
    match af {
        AF_INET => Some(EtherType::IPV4),
        // AF_INET6 differs between the BSDs: 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (Darwin).
        24 | 28 | 30 => Some(EtherType::IPV6),
        _ => None,
    }
}

fn split<'a>(data: &'a [u8], n: usize, what: &'static str) -> Result<(&'a [u8], &'a [u8]), Skip> {
    if data.len() < n {
        return Err(Skip::Malformed(what));
    }
    Ok(data.split_at(n))
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

fn be32(b: &[u8]) -> u32 {
    match b.get(..4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn le32(b: &[u8]) -> u32 {
    be32(b).swap_bytes()
}
