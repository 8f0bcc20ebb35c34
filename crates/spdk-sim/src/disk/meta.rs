//! The on-device metadata format (pure encoding, no I/O).
//!
//! SPDK keeps an lvstore (blobstore) on the device itself, which is why `bdev_aio_create` on the
//! same device after a restart brings the lvstore and its lvols back. The simulator does the same
//! with a much simpler format in the first 2 MiB of the device (inside the clusters the lvstore
//! reserves for metadata, so no data cluster overlaps it):
//!
//! * two slots of [`SLOT_SIZE`] bytes at offsets 0 and [`SLOT_SIZE`];
//! * each slot: a 40-byte header (magic, version, generation, payload length, payload CRC-32,
//!   header CRC-32) followed by a JSON payload;
//! * a write goes to the slot *not* holding the newest valid record, with generation + 1, and is
//!   fsynced; a reader takes the valid slot with the highest generation. A torn write therefore
//!   leaves the previous record readable.

use thiserror::Error;

/// Size of one metadata slot.
pub const SLOT_SIZE: u64 = 1024 * 1024;
/// Bytes the two slots occupy at the start of the device.
pub const META_REGION: u64 = 2 * SLOT_SIZE;
/// Header length in bytes.
pub const HEADER_LEN: usize = 40;
/// Marks a slot written by spdk-sim.
pub const MAGIC: &[u8; 8] = b"SPDKSIM\x01";
/// Format version.
pub const VERSION: u32 = 1;

/// Why a slot does not hold a usable record.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MetaError {
    /// The slot does not start with the magic (never written, or wiped).
    #[error("no spdk-sim metadata (magic missing)")]
    NoMagic,
    /// Written by an unknown format version.
    #[error("unsupported metadata version {0}")]
    Version(u32),
    /// Header checksum mismatch (torn or corrupted header).
    #[error("metadata header checksum mismatch")]
    HeaderChecksum,
    /// The payload is longer than the slot or than the bytes read.
    #[error("metadata payload length {0} does not fit the slot")]
    Length(u64),
    /// Payload checksum mismatch (torn or corrupted payload).
    #[error("metadata payload checksum mismatch")]
    PayloadChecksum,
    /// The payload does not fit in one slot.
    #[error("metadata payload of {0} bytes exceeds the {SLOT_SIZE}-byte slot")]
    TooLarge(usize),
}

/// A decoded slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Monotonic write counter.
    pub generation: u64,
    /// The payload (JSON text).
    pub payload: Vec<u8>,
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

const CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE 802.3, as zlib computes it).
#[must_use]
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc ^ 0xFFFF_FFFF
}

/// Encodes a record: header followed by the payload.
///
/// # Errors
/// [`MetaError::TooLarge`] if the payload does not fit in a slot.
pub fn encode(generation: u64, payload: &[u8]) -> Result<Vec<u8>, MetaError> {
    if (payload.len() + HEADER_LEN) as u64 > SLOT_SIZE {
        return Err(MetaError::TooLarge(payload.len()));
    }
    let len = u64::try_from(payload.len()).map_err(|_| MetaError::TooLarge(payload.len()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    let header_crc = crc32(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Decodes the slot contents in `bytes` (which may be shorter than a full slot).
///
/// # Errors
/// [`MetaError`] when the slot holds no valid record.
pub fn decode(bytes: &[u8]) -> Result<Record, MetaError> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(MetaError::NoMagic);
    }
    let version = u32_at(bytes, 8);
    if crc32(&bytes[..36]) != u32_at(bytes, 36) {
        return Err(MetaError::HeaderChecksum);
    }
    if version != VERSION {
        return Err(MetaError::Version(version));
    }
    let generation = u64_at(bytes, 16);
    let len = u64_at(bytes, 24);
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(HEADER_LEN))
        .ok_or(MetaError::Length(len))?;
    if end as u64 > SLOT_SIZE || end > bytes.len() {
        return Err(MetaError::Length(len));
    }
    let payload = &bytes[HEADER_LEN..end];
    if crc32(payload) != u32_at(bytes, 32) {
        return Err(MetaError::PayloadChecksum);
    }
    Ok(Record {
        generation,
        payload: payload.to_vec(),
    })
}

/// Picks the newest valid record of the two slots, and the slot index (0 or 1) to write next.
#[must_use]
pub fn newest(slots: [Result<Record, MetaError>; 2]) -> (Option<Record>, usize) {
    let [a, b] = slots;
    match (a.ok(), b.ok()) {
        (Some(a), Some(b)) if b.generation > a.generation => (Some(b), 0),
        (Some(a), _) => (Some(a), 1),
        (None, Some(b)) => (Some(b), 0),
        (None, None) => (None, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn roundtrip() {
        let bytes = encode(7, b"{\"a\":1}").unwrap();
        let rec = decode(&bytes).unwrap();
        assert_eq!(rec.generation, 7);
        assert_eq!(rec.payload, b"{\"a\":1}");
    }

    #[test]
    fn detects_damage() {
        let good = encode(1, b"payload").unwrap();
        assert_eq!(decode(&[0u8; 64]), Err(MetaError::NoMagic));
        let mut torn_payload = good.clone();
        let last = torn_payload.len() - 1;
        torn_payload[last] ^= 0xFF;
        assert_eq!(decode(&torn_payload), Err(MetaError::PayloadChecksum));
        let mut torn_header = good.clone();
        torn_header[17] ^= 0x01;
        assert_eq!(decode(&torn_header), Err(MetaError::HeaderChecksum));
        assert_eq!(decode(&good[..good.len() - 2]), Err(MetaError::Length(7)));
    }

    #[test]
    fn newest_valid_slot_wins_and_the_other_is_written_next() {
        let rec = |g| decode(&encode(g, b"x").unwrap());
        let (r, next) = newest([rec(3), rec(4)]);
        assert_eq!((r.map(|r| r.generation), next), (Some(4), 0));
        let (r, next) = newest([rec(5), Err(MetaError::PayloadChecksum)]);
        assert_eq!((r.map(|r| r.generation), next), (Some(5), 1));
        let (r, next) = newest([Err(MetaError::NoMagic), Err(MetaError::NoMagic)]);
        assert_eq!((r, next), (None, 0));
    }

    #[test]
    fn refuses_oversized_payloads() {
        let big = vec![b' '; usize::try_from(SLOT_SIZE).unwrap()];
        assert!(matches!(encode(1, &big), Err(MetaError::TooLarge(_))));
    }
}
