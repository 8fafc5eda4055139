//! The VXLAN checksum workaround, `ethtool -K flannel.1 tx-checksum-ip-generic off`,
//! spoken directly to the kernel's ethtool generic-netlink family (`ETHTOOL_MSG_FEATURES_SET`)
//! so no ethtool binary is needed.
//!
//! Some kernels and NICs corrupt the checksums of VXLAN-encapsulated packets when the
//! inner checksum is offloaded; turning the offload off on the VTEP makes the kernel
//! compute it in software.
//!
//! The messages are small and fixed, so they are encoded here byte by byte.

use std::path::PathBuf;

use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

use crate::{netns, Error, Result};

/// The feature the workaround turns off (`NETIF_F_HW_CSUM`).
pub const TX_CHECKSUM_FEATURE: &str = "tx-checksum-ip-generic";

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 0x2;
const NLMSG_DONE: u16 = 0x3;
const NLA_F_NESTED: u16 = 1 << 15;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

const ETHTOOL_GENL_VERSION: u8 = 1;
const ETHTOOL_MSG_FEATURES_SET: u8 = 12;
const ETHTOOL_A_FEATURES_HEADER: u16 = 1;
const ETHTOOL_A_FEATURES_WANTED: u16 = 3;
const ETHTOOL_A_HEADER_DEV_NAME: u16 = 2;
const ETHTOOL_A_HEADER_FLAGS: u16 = 3;
const ETHTOOL_FLAG_OMIT_REPLY: u32 = 1 << 1;
const ETHTOOL_A_BITSET_BITS: u16 = 3;
const ETHTOOL_A_BITSET_BITS_BIT: u16 = 1;
const ETHTOOL_A_BITSET_BIT_NAME: u16 = 2;
const ETHTOOL_A_BITSET_BIT_VALUE: u16 = 3;

/// One netlink attribute: length, type, payload, padded to 4 bytes.
fn attribute(kind: u16, payload: &[u8]) -> Vec<u8> {
    let length = 4 + payload.len();
    let mut bytes = Vec::with_capacity((length + 3) & !3);
    bytes.extend_from_slice(&(length as u16).to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(payload);
    bytes.resize((length + 3) & !3, 0);
    bytes
}

fn nested(kind: u16, children: &[Vec<u8>]) -> Vec<u8> {
    attribute(kind | NLA_F_NESTED, &children.concat())
}

fn c_string(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// A generic-netlink request: netlink header, genl header (command, version), attributes.
fn genl_request(
    family: u16,
    sequence: u32,
    command: u8,
    version: u8,
    attributes: &[Vec<u8>],
) -> Vec<u8> {
    let body = attributes.concat();
    let length = 16 + 4 + body.len();
    let mut bytes = Vec::with_capacity(length);
    bytes.extend_from_slice(&(length as u32).to_ne_bytes());
    bytes.extend_from_slice(&family.to_ne_bytes());
    bytes.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    bytes.extend_from_slice(&sequence.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes.extend_from_slice(&[command, version, 0, 0]);
    bytes.extend_from_slice(&body);
    bytes
}

/// `CTRL_CMD_GETFAMILY` for the family called `name`.
fn family_request(sequence: u32, name: &str) -> Vec<u8> {
    genl_request(
        GENL_ID_CTRL,
        sequence,
        CTRL_CMD_GETFAMILY,
        1,
        &[attribute(CTRL_ATTR_FAMILY_NAME, &c_string(name))],
    )
}

/// `ETHTOOL_MSG_FEATURES_SET` switching one named feature of `device` on or off.
fn feature_request(
    family: u16,
    sequence: u32,
    device: &str,
    feature: &str,
    enabled: bool,
) -> Vec<u8> {
    let mut bit = vec![attribute(ETHTOOL_A_BITSET_BIT_NAME, &c_string(feature))];
    if enabled {
        // A flag: present means on. Without ETHTOOL_A_BITSET_NOMASK only the listed
        // bits change, so the other features stay as they are.
        bit.push(attribute(ETHTOOL_A_BITSET_BIT_VALUE, &[]));
    }
    genl_request(
        family,
        sequence,
        ETHTOOL_MSG_FEATURES_SET,
        ETHTOOL_GENL_VERSION,
        &[
            nested(
                ETHTOOL_A_FEATURES_HEADER,
                &[
                    attribute(ETHTOOL_A_HEADER_DEV_NAME, &c_string(device)),
                    attribute(
                        ETHTOOL_A_HEADER_FLAGS,
                        &ETHTOOL_FLAG_OMIT_REPLY.to_ne_bytes(),
                    ),
                ],
            ),
            nested(
                ETHTOOL_A_FEATURES_WANTED,
                &[nested(
                    ETHTOOL_A_BITSET_BITS,
                    &[nested(ETHTOOL_A_BITSET_BITS_BIT, &bit)],
                )],
            ),
        ],
    )
}

/// The messages in one datagram: (type, sequence, payload).
fn messages(buffer: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut found = Vec::new();
    let mut offset = 0;
    while offset + 16 <= buffer.len() {
        let length =
            u32::from_ne_bytes(buffer[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        if length < 16 || offset + length > buffer.len() {
            break;
        }
        let kind = u16::from_ne_bytes(buffer[offset + 4..offset + 6].try_into().expect("2 bytes"));
        let sequence =
            u32::from_ne_bytes(buffer[offset + 8..offset + 12].try_into().expect("4 bytes"));
        found.push((kind, sequence, &buffer[offset + 16..offset + length]));
        offset += (length + 3) & !3;
    }
    found
}

/// The attributes of a payload: (type without flags, value).
fn attributes(mut payload: &[u8]) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    while payload.len() >= 4 {
        let length = u16::from_ne_bytes([payload[0], payload[1]]) as usize;
        let kind = u16::from_ne_bytes([payload[2], payload[3]]) & !NLA_F_NESTED;
        if length < 4 || length > payload.len() {
            break;
        }
        found.push((kind, &payload[4..length]));
        payload = &payload[((length + 3) & !3).min(payload.len())..];
    }
    found
}

/// Send `request` and read until the kernel acknowledges sequence `sequence`; returns
/// the payloads of the non-ack replies. An error reply becomes an `Err`.
fn transact(socket: &Socket, request: &[u8], sequence: u32, what: &str) -> Result<Vec<Vec<u8>>> {
    socket
        .send(request, 0)
        .map_err(|e| Error::Ethtool(format!("{what}: sending: {e}")))?;
    let mut replies = Vec::new();
    loop {
        let (buffer, _) = socket
            .recv_from_full()
            .map_err(|e| Error::Ethtool(format!("{what}: receiving: {e}")))?;
        for (kind, reply_sequence, payload) in messages(&buffer) {
            if reply_sequence != sequence {
                continue;
            }
            match kind {
                NLMSG_ERROR => {
                    let code = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                        .unwrap_or(0);
                    if code == 0 {
                        return Ok(replies);
                    }
                    return Err(Error::Ethtool(format!(
                        "{what}: {}",
                        std::io::Error::from_raw_os_error(-code)
                    )));
                }
                NLMSG_DONE => return Ok(replies),
                _ => replies.push(payload.to_vec()),
            }
        }
    }
}

fn set_feature_blocking(device: &str, feature: &str, enabled: bool) -> Result<()> {
    let mut socket = Socket::new(NETLINK_GENERIC)
        .map_err(|e| Error::Ethtool(format!("opening a generic netlink socket: {e}")))?;
    socket
        .bind_auto()
        .and_then(|_| socket.connect(&SocketAddr::new(0, 0)))
        .map_err(|e| Error::Ethtool(format!("binding a generic netlink socket: {e}")))?;

    let replies = transact(
        &socket,
        &family_request(1, "ethtool"),
        1,
        "resolving the ethtool family",
    )?;
    let family = replies
        .iter()
        .flat_map(|payload| attributes(payload.get(4..).unwrap_or_default()))
        .find_map(|(kind, value)| {
            (kind == CTRL_ATTR_FAMILY_ID && value.len() >= 2)
                .then(|| u16::from_ne_bytes([value[0], value[1]]))
        })
        .ok_or_else(|| Error::Ethtool("the kernel has no ethtool netlink family".into()))?;

    transact(
        &socket,
        &feature_request(family, 2, device, feature, enabled),
        2,
        &format!(
            "setting {feature} {} on {device}",
            if enabled { "on" } else { "off" }
        ),
    )?;
    Ok(())
}

/// Turn `tx-checksum-ip-generic` off on `device` (inside `netns` if given).
pub async fn disable_tx_checksum_offload(device: &str, netns: Option<PathBuf>) -> Result<()> {
    let device = device.to_string();
    netns::run_in(netns, move || {
        set_feature_blocking(&device, TX_CHECKSUM_FEATURE, false)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        assert_eq!(
            attribute(2, b"ab\0"),
            [7u16.to_ne_bytes(), 2u16.to_ne_bytes()]
                .concat()
                .into_iter()
                .chain([b'a', b'b', 0, 0])
                .collect::<Vec<u8>>()
        );
        let outer = nested(1, &[attribute(2, &[])]);
        assert_eq!(u16::from_ne_bytes([outer[2], outer[3]]), 1 | NLA_F_NESTED);
        assert_eq!(u16::from_ne_bytes([outer[0], outer[1]]), 8);
        assert_eq!(attributes(&outer), vec![(1, &outer[4..8])]);
    }

    #[test]
    fn feature_request_layout() {
        let request = feature_request(0x1c, 2, "flannel.1", TX_CHECKSUM_FEATURE, false);
        let parsed = messages(&request);
        assert_eq!(parsed.len(), 1);
        let (kind, sequence, payload) = parsed[0];
        assert_eq!((kind, sequence), (0x1c, 2));
        assert_eq!(
            &payload[..2],
            &[ETHTOOL_MSG_FEATURES_SET, ETHTOOL_GENL_VERSION]
        );
        let top = attributes(&payload[4..]);
        assert_eq!(
            top.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [ETHTOOL_A_FEATURES_HEADER, ETHTOOL_A_FEATURES_WANTED]
        );
        let header = attributes(top[0].1);
        assert_eq!(header[0], (ETHTOOL_A_HEADER_DEV_NAME, &b"flannel.1\0"[..]));
        let bits = attributes(top[1].1);
        assert_eq!(bits[0].0, ETHTOOL_A_BITSET_BITS);
        let bit = attributes(bits[0].1);
        assert_eq!(bit[0].0, ETHTOOL_A_BITSET_BITS_BIT);
        let fields = attributes(bit[0].1);
        // Off: the name alone, without the value flag.
        assert_eq!(
            fields,
            vec![(ETHTOOL_A_BITSET_BIT_NAME, &b"tx-checksum-ip-generic\0"[..])]
        );

        let on = feature_request(0x1c, 3, "flannel.1", TX_CHECKSUM_FEATURE, true);
        assert!(on.len() > request.len());
    }
}
