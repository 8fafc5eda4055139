//! The VTEP MAC address of `flannel.1`, which other nodes pin in their neighbour and FDB
//! tables: it must survive restarts, or every peer would send to a stale MAC until it
//! saw the new annotation.
//!
//! The address is derived from the node name (so a lost file gives the same answer) and
//! kept in a file under the agent data dir (so an operator can pin another one).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// An Ethernet address, printed as `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// A locally administered unicast address from the SHA-256 of the node name: stable
    /// for a name, and (with 46 free bits) distinct between the nodes of a cluster.
    pub fn for_node(node_name: &str) -> MacAddress {
        let digest = Sha256::digest(format!("k3rs-flannel-vtep/{node_name}").as_bytes());
        let mut bytes = [0u8; 6];
        bytes.copy_from_slice(&digest[..6]);
        // Bit 1 of the first octet: locally administered; bit 0: unicast.
        bytes[0] = (bytes[0] | 0b10) & !0b01;
        MacAddress(bytes)
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    fn is_usable_unicast(&self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.trim().split(':').collect();
        if parts.len() != 6 {
            return Err(format!("{text:?} is not a MAC address"));
        }
        let mut bytes = [0u8; 6];
        for (slot, part) in bytes.iter_mut().zip(&parts) {
            if part.len() != 2 {
                return Err(format!("{text:?} is not a MAC address"));
            }
            *slot = u8::from_str_radix(part, 16)
                .map_err(|_| format!("{text:?} is not a MAC address"))?;
        }
        Ok(MacAddress(bytes))
    }
}

impl TryFrom<&[u8]> for MacAddress {
    type Error = String;

    fn try_from(bytes: &[u8]) -> Result<Self, String> {
        <[u8; 6]>::try_from(bytes)
            .map(MacAddress)
            .map_err(|_| format!("{} bytes is not a MAC address", bytes.len()))
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The VTEP MAC kept at `path`, or (first start, lost file) the one derived from the
/// node name, written there for the next start.
pub fn load_or_create(path: &Path, node_name: &str) -> Result<MacAddress> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mac: MacAddress = text
                .parse()
                .map_err(|e| Error::Config(format!("VTEP MAC file {}: {e}", path.display())))?;
            if !mac.is_usable_unicast() {
                return Err(Error::Config(format!(
                    "VTEP MAC file {}: {mac} is not a unicast address",
                    path.display()
                )));
            }
            Ok(mac)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mac = MacAddress::for_node(node_name);
            crate::subnet_env::write_atomically(path, &format!("{mac}\n"))?;
            Ok(mac)
        }
        Err(err) => Err(Error::file("reading the VTEP MAC file", path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_address_is_stable_local_unicast_and_differs_per_node() {
        let a = MacAddress::for_node("node-a");
        assert_eq!(a, MacAddress::for_node("node-a"));
        assert_ne!(a, MacAddress::for_node("node-b"));
        assert_eq!(a.0[0] & 0b11, 0b10, "locally administered unicast: {a}");
    }

    #[test]
    fn text_round_trip() {
        let mac: MacAddress = "5e:08:1d:56:15:e3".parse().unwrap();
        assert_eq!(mac.to_string(), "5e:08:1d:56:15:e3");
        assert_eq!(
            serde_json::to_string(&mac).unwrap(),
            "\"5e:08:1d:56:15:e3\""
        );
        assert!("5e:08:1d:56:15".parse::<MacAddress>().is_err());
        assert!("5e:08:1d:56:15:zz".parse::<MacAddress>().is_err());
        assert!(MacAddress::try_from(&[1u8, 2, 3][..]).is_err());
    }

    #[test]
    fn persisted_across_restarts_and_an_operator_value_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent/flannel-vtep-mac");
        let first = load_or_create(&path, "node-a").unwrap();
        assert_eq!(first, MacAddress::for_node("node-a"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{first}\n")
        );

        std::fs::write(&path, "02:00:00:00:00:07\n").unwrap();
        assert_eq!(
            load_or_create(&path, "node-a").unwrap().to_string(),
            "02:00:00:00:00:07"
        );

        std::fs::write(&path, "03:00:00:00:00:07\n").unwrap();
        let err = load_or_create(&path, "node-a").unwrap_err().to_string();
        assert!(err.contains("not a unicast address"), "{err}");
    }
}
