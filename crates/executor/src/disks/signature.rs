//! What the first bytes of a device say it holds (pure): filesystems, partition tables,
//! volume-manager and RAID members, and SPDK's own blobstore (an lvstore, which is imported
//! rather than treated as foreign data).
//!
//! Only signatures at fixed offsets within the first [`SIGNATURE_BYTES`] are looked at;
//! formats whose only superblock is at the end of a device (md 0.90/1.0) are not detected.

/// How many bytes from the start of a device [`detect`] needs: the btrfs superblock sits at
/// 64 KiB, ZFS's first uberblock at 128 KiB; one MiB leaves room for every format below.
pub const SIGNATURE_BYTES: usize = 1 << 20;

/// What a device holds according to its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// Nothing recognised (zeroes or unknown data).
    None,
    /// SPDK's blobstore (`SPDKBLOB` at offset 0): an lvstore to import.
    SpdkBlobstore,
    /// A filesystem (`ext4`, `xfs`, `btrfs`, `swap`, `vfat`, ...).
    Filesystem(&'static str),
    /// A partition table (`gpt` or `dos`).
    PartitionTable(&'static str),
    /// A member of something else: LVM2, md RAID, LUKS, bcache, an SPDK raid.
    Member(&'static str),
}

impl Signature {
    /// True when the device holds data that is neither nothing nor an lvstore.
    pub fn is_foreign(self) -> bool {
        !matches!(self, Self::None | Self::SpdkBlobstore)
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("no signature"),
            Self::SpdkBlobstore => f.write_str("an SPDK blobstore (lvstore)"),
            Self::Filesystem(n) => write!(f, "a filesystem signature ({n})"),
            Self::PartitionTable(n) => write!(f, "a partition table ({n})"),
            Self::Member(n) => write!(f, "a volume or RAID member signature ({n})"),
        }
    }
}

fn at(buf: &[u8], off: usize, magic: &[u8]) -> bool {
    buf.get(off..off + magic.len()) == Some(magic)
}

fn le_u32(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn le_u64(buf: &[u8], off: usize) -> Option<u64> {
    let b = buf.get(off..off + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// Recognises the first bytes of a device. `buf` may be shorter than [`SIGNATURE_BYTES`]
/// (a small device); checks past its end simply do not match.
pub fn detect(buf: &[u8]) -> Signature {
    // SPDK first: its superblock page at 0 overwrites whatever was there.
    if at(buf, 0, b"SPDKBLOB") {
        return Signature::SpdkBlobstore;
    }
    if at(buf, 0, b"SPDKRAID") {
        return Signature::Member("SPDK raid superblock");
    }
    if at(buf, 0, b"LUKS\xba\xbe") {
        return Signature::Member("LUKS");
    }
    if at(buf, 0, b"XFSB") {
        return Signature::Filesystem("xfs");
    }
    if [0, 512, 1024, 1536]
        .iter()
        .any(|&o| at(buf, o, b"LABELONE") && at(buf, o + 24, b"LVM2 001"))
    {
        return Signature::Member("LVM2 physical volume");
    }
    const MD_MAGIC: u32 = 0xa92b_4efc;
    if le_u32(buf, 0) == Some(MD_MAGIC) || le_u32(buf, 4096) == Some(MD_MAGIC) {
        return Signature::Member("Linux RAID (md)");
    }
    const BCACHE_MAGIC: [u8; 16] = [
        0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d,
        0x81,
    ];
    if at(buf, 4096 + 24, &BCACHE_MAGIC) {
        return Signature::Member("bcache");
    }
    if let Some(fs) = ext_kind(buf) {
        return Signature::Filesystem(fs);
    }
    if at(buf, 0x10040, b"_BHRfS_M") {
        return Signature::Filesystem("btrfs");
    }
    if [4096 - 10, 8192 - 10, 16384 - 10, 65536 - 10]
        .iter()
        .any(|&o| at(buf, o, b"SWAPSPACE2") || at(buf, o, b"SWAP-SPACE"))
    {
        return Signature::Filesystem("swap");
    }
    if at(buf, 32769, b"CD001") {
        return Signature::Filesystem("iso9660");
    }
    const ZFS_UBERBLOCK: u64 = 0x00ba_b10c;
    if (0..8).any(|k| le_u64(buf, (128 << 10) + k * 1024) == Some(ZFS_UBERBLOCK)) {
        return Signature::Member("ZFS");
    }
    if at(buf, 3, b"NTFS    ") {
        return Signature::Filesystem("ntfs");
    }
    if at(buf, 3, b"EXFAT   ") {
        return Signature::Filesystem("exfat");
    }
    let boot_sig = at(buf, 510, &[0x55, 0xaa]);
    if boot_sig && (at(buf, 54, b"FAT1") || at(buf, 82, b"FAT32   ")) {
        return Signature::Filesystem("vfat");
    }
    if at(buf, 512, b"EFI PART") || at(buf, 4096, b"EFI PART") {
        return Signature::PartitionTable("gpt");
    }
    if boot_sig {
        let types: Vec<u8> = (0..4)
            .filter_map(|i| buf.get(446 + 16 * i + 4).copied())
            .collect();
        if types.contains(&0xee) {
            return Signature::PartitionTable("gpt");
        }
        if types.iter().any(|&t| t != 0) {
            return Signature::PartitionTable("dos");
        }
    }
    Signature::None
}

/// ext2, ext3 or ext4 from the superblock at 1024 (magic 0xEF53 at 1024 + 56).
fn ext_kind(buf: &[u8]) -> Option<&'static str> {
    const SB: usize = 1024;
    if !at(buf, SB + 56, &[0x53, 0xef]) {
        return None;
    }
    let compat = le_u32(buf, SB + 0x5c).unwrap_or(0);
    let incompat = le_u32(buf, SB + 0x60).unwrap_or(0);
    // extents, 64bit, flex_bg: ext4; a journal: ext3.
    Some(if incompat & (0x40 | 0x80 | 0x200) != 0 {
        "ext4"
    } else if compat & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> Vec<u8> {
        vec![0u8; SIGNATURE_BYTES]
    }

    fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
        buf[off..off + bytes.len()].copy_from_slice(bytes);
    }

    #[test]
    fn zeroes_and_short_buffers_have_no_signature() {
        assert_eq!(detect(&blank()), Signature::None);
        assert_eq!(detect(&[]), Signature::None);
        assert_eq!(detect(&[0x53; 100]), Signature::None);
    }

    #[test]
    fn ext_family_by_feature_flags() {
        let mut b = blank();
        put(&mut b, 1024 + 56, &[0x53, 0xef]);
        assert_eq!(detect(&b), Signature::Filesystem("ext2"));
        put(&mut b, 1024 + 0x5c, &4u32.to_le_bytes());
        assert_eq!(detect(&b), Signature::Filesystem("ext3"));
        put(&mut b, 1024 + 0x60, &0x2c2u32.to_le_bytes());
        assert_eq!(detect(&b), Signature::Filesystem("ext4"));
        assert_eq!(detect(&b).to_string(), "a filesystem signature (ext4)");
    }

    #[test]
    fn filesystems_at_their_offsets() {
        let cases: &[(usize, &[u8], Signature)] = &[
            (0, b"XFSB", Signature::Filesystem("xfs")),
            (0x10040, b"_BHRfS_M", Signature::Filesystem("btrfs")),
            (4086, b"SWAPSPACE2", Signature::Filesystem("swap")),
            (65526, b"SWAPSPACE2", Signature::Filesystem("swap")),
            (32769, b"CD001", Signature::Filesystem("iso9660")),
            (3, b"NTFS    ", Signature::Filesystem("ntfs")),
            (3, b"EXFAT   ", Signature::Filesystem("exfat")),
            (0, b"LUKS\xba\xbe", Signature::Member("LUKS")),
            (
                4096,
                &0xa92b_4efcu32.to_le_bytes(),
                Signature::Member("Linux RAID (md)"),
            ),
            (512 + 24, b"LVM2 001", Signature::None), // without LABELONE
            (0, b"SPDKRAID", Signature::Member("SPDK raid superblock")),
            (
                128 << 10,
                &0x00ba_b10cu64.to_le_bytes(),
                Signature::Member("ZFS"),
            ),
        ];
        for (off, magic, want) in cases {
            let mut b = blank();
            put(&mut b, *off, magic);
            assert_eq!(detect(&b), *want, "magic {magic:?} at {off}");
        }
    }

    #[test]
    fn lvm_needs_label_and_type() {
        let mut b = blank();
        put(&mut b, 512, b"LABELONE");
        assert_eq!(detect(&b), Signature::None);
        put(&mut b, 512 + 24, b"LVM2 001");
        assert_eq!(detect(&b), Signature::Member("LVM2 physical volume"));
    }

    #[test]
    fn partition_tables() {
        let mut b = blank();
        put(&mut b, 510, &[0x55, 0xaa]);
        assert_eq!(
            detect(&b),
            Signature::None,
            "a boot signature with no entries"
        );
        put(&mut b, 446 + 16 + 4, &[0x83]);
        assert_eq!(detect(&b), Signature::PartitionTable("dos"));
        put(&mut b, 446 + 4, &[0xee]);
        assert_eq!(
            detect(&b),
            Signature::PartitionTable("gpt"),
            "protective MBR"
        );
        let mut g = blank();
        put(&mut g, 4096, b"EFI PART");
        assert_eq!(detect(&g), Signature::PartitionTable("gpt"));
        let mut fat = blank();
        put(&mut fat, 510, &[0x55, 0xaa]);
        put(&mut fat, 82, b"FAT32   ");
        put(&mut fat, 446 + 4, &[0x0c]);
        assert_eq!(detect(&fat), Signature::Filesystem("vfat"));
    }

    #[test]
    fn an_spdk_blobstore_wins_and_is_not_foreign() {
        let mut b = blank();
        put(&mut b, 1024 + 56, &[0x53, 0xef]);
        put(&mut b, 0, b"SPDKBLOB");
        assert_eq!(detect(&b), Signature::SpdkBlobstore);
        assert!(!Signature::SpdkBlobstore.is_foreign());
        assert!(!Signature::None.is_foreign());
        assert!(Signature::PartitionTable("gpt").is_foreign());
        assert_eq!(
            Signature::PartitionTable("gpt").to_string(),
            "a partition table (gpt)"
        );
    }
}
