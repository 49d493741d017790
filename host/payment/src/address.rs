//! Ethereum addresses and their EIP-55 checksummed form.

use std::fmt;
use std::str::FromStr;

use crate::hash::keccak256;

/// A 20-byte account address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 20]);

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum AddressError {
    #[error("address must be 0x followed by 40 hex digits")]
    Format,
    #[error("address has mixed case but a wrong EIP-55 checksum")]
    Checksum,
}

impl Address {
    /// The EIP-55 checksummed text form, `0x` + 40 hex digits.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = keccak256(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = hash.get(i / 2).map_or(0, |b| if i % 2 == 0 { b >> 4 } else { b & 0x0f });
            out.push(if c.is_ascii_alphabetic() && nibble >= 8 { c.to_ascii_uppercase() } else { c });
        }
        out
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Accepts `0x` + 40 hex digits in all-lower, all-upper or correctly checksummed case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).ok_or(AddressError::Format)?;
        if digits.len() != 40 {
            return Err(AddressError::Format);
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| AddressError::Format)?;
        let addr = Address(bytes);
        let mixed = digits.chars().any(|c| c.is_ascii_lowercase()) && digits.chars().any(|c| c.is_ascii_uppercase());
        if mixed && addr.to_checksum()[2..] != *digits {
            return Err(AddressError::Checksum);
        }
        Ok(addr)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.to_checksum())
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_checksum())
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_vectors() {
        // From the EIP-55 specification.
        for s in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_checksum(), s);
            assert_eq!(s.to_lowercase().parse::<Address>().unwrap(), a);
        }
        assert_eq!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD".parse::<Address>(), Err(AddressError::Checksum));
        assert_eq!("0x5aAeb6".parse::<Address>(), Err(AddressError::Format));
        assert_eq!("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".parse::<Address>(), Err(AddressError::Format));
        assert_eq!("0xzzAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".parse::<Address>(), Err(AddressError::Format));
    }
}
