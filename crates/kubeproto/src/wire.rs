//! Protobuf wire format reading: varints, keys, length-delimited payloads.
//!
//! This is the only place that looks at raw bytes. It knows nothing about schemas;
//! every read is bounds-checked and reports a [`WireError`] instead of panicking.

use std::fmt;

/// Protobuf wire types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint,
    Fixed64,
    LengthDelimited,
    StartGroup,
    EndGroup,
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Option<Self> {
        Some(match bits {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::LengthDelimited,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return None,
        })
    }
}

/// A low-level decoding failure; the caller adds the message and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireError {
    TruncatedVarint,
    VarintTooLong,
    Truncated { needed: u64, available: usize },
    BadWireType(u64),
    BadFieldNumber(u64),
    UnexpectedWireType { expected: WireType, found: WireType },
    GroupsUnsupported,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TruncatedVarint => f.write_str("truncated varint"),
            WireError::VarintTooLong => f.write_str("varint longer than 10 bytes"),
            WireError::Truncated { needed, available } => {
                write!(f, "needs {needed} bytes but only {available} remain")
            }
            WireError::BadWireType(bits) => write!(f, "invalid wire type {bits}"),
            WireError::BadFieldNumber(n) => write!(f, "invalid field number {n}"),
            WireError::UnexpectedWireType { expected, found } => {
                write!(f, "expected wire type {expected:?}, found {found:?}")
            }
            WireError::GroupsUnsupported => f.write_str("protobuf groups are not supported"),
        }
    }
}

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

/// A field's raw value as read from the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl RawValue<'_> {
    pub(crate) fn wire_type(&self) -> WireType {
        match self {
            RawValue::Varint(_) => WireType::Varint,
            RawValue::Fixed64(_) => WireType::Fixed64,
            RawValue::Fixed32(_) => WireType::Fixed32,
            RawValue::Bytes(_) => WireType::LengthDelimited,
        }
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for (i, &byte) in self.buf.iter().enumerate() {
            if i == 10 {
                return Err(WireError::VarintTooLong);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() >= 10 {
            Err(WireError::VarintTooLong)
        } else {
            Err(WireError::TruncatedVarint)
        }
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        let available = self.buf.len();
        let n = usize::try_from(len)
            .ok()
            .filter(|&n| n <= available)
            .ok_or(WireError::Truncated {
                needed: len,
                available,
            })?;
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a field key: (field number, wire type).
    pub(crate) fn key(&mut self) -> Result<(u32, WireType), WireError> {
        let key = self.varint()?;
        let wire_type = WireType::from_bits(key & 7).ok_or(WireError::BadWireType(key & 7))?;
        let number = key >> 3;
        match u32::try_from(number) {
            Ok(n) if (1..=536_870_911).contains(&n) => Ok((n, wire_type)),
            _ => Err(WireError::BadFieldNumber(number)),
        }
    }

    /// Reads the value that follows a key of `wire_type`.
    pub(crate) fn value(&mut self, wire_type: WireType) -> Result<RawValue<'a>, WireError> {
        match wire_type {
            WireType::Varint => self.varint().map(RawValue::Varint),
            WireType::Fixed64 => {
                let bytes = self.take(8)?;
                let array: [u8; 8] = bytes.try_into().map_err(|_| WireError::Truncated {
                    needed: 8,
                    available: bytes.len(),
                })?;
                Ok(RawValue::Fixed64(u64::from_le_bytes(array)))
            }
            WireType::Fixed32 => {
                let bytes = self.take(4)?;
                let array: [u8; 4] = bytes.try_into().map_err(|_| WireError::Truncated {
                    needed: 4,
                    available: bytes.len(),
                })?;
                Ok(RawValue::Fixed32(u32::from_le_bytes(array)))
            }
            WireType::LengthDelimited => {
                let len = self.varint()?;
                self.take(len).map(RawValue::Bytes)
            }
            WireType::StartGroup | WireType::EndGroup => Err(WireError::GroupsUnsupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints() {
        let mut r = Reader::new(&[0x96, 0x01, 0x00]);
        assert_eq!(r.varint(), Ok(150));
        assert_eq!(r.varint(), Ok(0));
        assert!(r.is_empty());
    }

    #[test]
    fn rejects_truncated_and_overlong_varints() {
        assert_eq!(
            Reader::new(&[0x80, 0x80]).varint(),
            Err(WireError::TruncatedVarint)
        );
        assert_eq!(
            Reader::new(&[0xff; 11]).varint(),
            Err(WireError::VarintTooLong)
        );
    }

    #[test]
    fn rejects_length_past_the_end() {
        let mut r = Reader::new(&[0x0a, 0x05, b'a']);
        let (number, wire_type) = r.key().unwrap();
        assert_eq!((number, wire_type), (1, WireType::LengthDelimited));
        assert!(matches!(
            r.value(wire_type),
            Err(WireError::Truncated { needed: 5, .. })
        ));
    }

    #[test]
    fn rejects_field_zero() {
        assert_eq!(
            Reader::new(&[0x00]).key(),
            Err(WireError::BadFieldNumber(0))
        );
    }
}
