//! The byte layout of stored values: one format byte, then the JSON of a contract type.
//!
//! The byte is the store format version that wrote the value, so a later format can read values
//! written by an earlier one (and convert them) while refusing values from a newer one. Which
//! table holds which type is `tables.rs`' concern.

use serde::{Deserialize, Serialize};

/// The format byte written in front of every value.
pub(crate) const VALUE_FORMAT: u8 = 5;

/// Why a stored value could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// No bytes at all, not even the format byte.
    #[error("a stored value is empty")]
    Empty,
    /// Written by a newer stigmer.
    #[error("a stored value has format {0}; this stigmer reads up to {VALUE_FORMAT}")]
    Newer(u8),
    /// A format byte no stigmer writes.
    #[error("a stored value has unknown format {0}")]
    Unknown(u8),
    /// The format byte is known but what follows does not parse.
    #[error("a stored value does not parse: {0}")]
    Json(#[source] serde_json::Error),
}

/// Encodes a value in the current format.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = vec![VALUE_FORMAT];
    serde_json::to_writer(&mut bytes, value)?;
    Ok(bytes)
}

/// Decodes a value written in this format or (once there are any) an earlier one.
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(json_of(bytes)?).map_err(DecodeError::Json)
}

/// The JSON of a value written in this format or an earlier one.
pub(crate) fn json_of(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    let Some((&format, json)) = bytes.split_first() else {
        return Err(DecodeError::Empty);
    };
    match format {
        // Formats 2 to 5 kept every value readable as it was written (5 only moved fields apart).
        // A later format that changes a layout converts its predecessors' values in `decode`.
        1..=VALUE_FORMAT => Ok(json),
        newer if newer > VALUE_FORMAT => Err(DecodeError::Newer(newer)),
        unknown => Err(DecodeError::Unknown(unknown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_behind_the_format_byte() {
        let value = vec![("a".to_owned(), 1_u64), ("b".to_owned(), 2)];
        let bytes = encode(&value).unwrap();
        assert_eq!(bytes[0], VALUE_FORMAT);
        assert_eq!(&bytes[1..], br#"[["a",1],["b",2]]"#);
        assert_eq!(decode::<Vec<(String, u64)>>(&bytes).unwrap(), value);
    }

    #[test]
    fn unreadable_values_are_reported_not_guessed() {
        assert!(matches!(decode::<u64>(&[]), Err(DecodeError::Empty)));
        assert!(matches!(decode::<u64>(b"\x06{}"), Err(DecodeError::Newer(6))));
        assert_eq!(decode::<u64>(b"\x017").unwrap(), 7, "format 1 values still read");
        assert!(matches!(decode::<u64>(b"\x00{}"), Err(DecodeError::Unknown(0))));
        assert!(matches!(decode::<u64>(b"\x01not json"), Err(DecodeError::Json(_))));
    }
}
