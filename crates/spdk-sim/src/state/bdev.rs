//! Block devices as `bdev_get_bdevs` shows them.

use crate::json::J;
use std::path::PathBuf;
use uuid::Uuid;

/// Who holds a claim on a bdev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimer {
    /// An lvstore lives on it.
    Lvstore(Uuid),
    /// It is a base bdev of this raid.
    Raid(String),
    /// It is a namespace of this NVMe-oF subsystem.
    Nvmf(String),
}

impl Claimer {
    /// `claim_type` as SPDK prints it.
    #[must_use]
    pub fn claim_type(&self) -> &'static str {
        match self {
            Claimer::Lvstore(_) => "read_many_write_one",
            Claimer::Raid(_) | Claimer::Nvmf(_) => "exclusive_write",
        }
    }
}

/// Identity of the remote namespace behind an NVMe bdev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeNs {
    /// Controller name.
    pub ctrlr: String,
    /// Namespace id.
    pub nsid: u32,
}

/// Module-specific part of a bdev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BdevKind {
    /// `bdev_aio_create`.
    Aio {
        /// The filename as given.
        filename: String,
        /// Whether `block_size` was given.
        block_size_override: bool,
        /// `readonly`.
        readonly: bool,
        /// `fallocate`.
        fallocate: bool,
    },
    /// An lvol of an lvstore.
    Lvol {
        /// The lvstore.
        lvs: Uuid,
    },
    /// A raid bdev (details live in the raid table).
    Raid,
    /// A namespace of an attached NVMe-oF controller.
    Nvme(NvmeNs),
}

/// A registered bdev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bdev {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: Uuid,
    /// Aliases (`lvs/lvol` for lvols, the UUID for others).
    pub aliases: Vec<String>,
    /// Block size.
    pub block_size: u32,
    /// Size in blocks.
    pub num_blocks: u64,
    /// Current claim.
    pub claim: Option<Claimer>,
    /// Module part.
    pub kind: BdevKind,
    /// Backing path of an aio bdev (where an lvstore is persisted).
    pub backing: Option<PathBuf>,
}

impl Bdev {
    /// Whether `name` designates this bdev (name, alias or UUID).
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        self.name == name
            || self.aliases.iter().any(|a| a == name)
            || Uuid::parse_str(name).is_ok_and(|u| u == self.uuid)
    }

    /// `product_name`.
    #[must_use]
    pub fn product_name(&self) -> &'static str {
        match self.kind {
            BdevKind::Aio { .. } => "AIO disk",
            BdevKind::Lvol { .. } => "Logical Volume",
            BdevKind::Raid => "Raid Volume",
            BdevKind::Nvme(_) => "NVMe disk",
        }
    }
}

/// The all-zero rate limits object every bdev shows.
#[must_use]
pub fn rate_limits() -> J {
    J::obj()
        .with("rw_ios_per_sec", 0u64)
        .with("rw_mbytes_per_sec", 0u64)
        .with("r_mbytes_per_sec", 0u64)
        .with("w_mbytes_per_sec", 0u64)
}

/// Which I/O types a bdev supports, as the recorded target reported per module.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoTypes {
    /// read
    pub read: bool,
    /// write
    pub write: bool,
    /// unmap
    pub unmap: bool,
    /// flush
    pub flush: bool,
    /// reset
    pub reset: bool,
    /// nvme_admin / nvme_io
    pub nvme: bool,
    /// write_zeroes
    pub write_zeroes: bool,
    /// compare / compare_and_write / abort / copy
    pub nvme_extras: bool,
    /// seek_hole / seek_data
    pub seek: bool,
}

impl IoTypes {
    /// aio bdevs.
    #[must_use]
    pub fn aio() -> Self {
        Self {
            read: true,
            write: true,
            flush: true,
            reset: true,
            write_zeroes: true,
            ..Self::default()
        }
    }
    /// lvol bdevs (`read_only` for snapshots).
    #[must_use]
    pub fn lvol(read_only: bool) -> Self {
        Self {
            read: true,
            write: !read_only,
            unmap: !read_only,
            reset: true,
            write_zeroes: !read_only,
            seek: true,
            ..Self::default()
        }
    }
    /// raid bdevs.
    #[must_use]
    pub fn raid() -> Self {
        Self {
            read: true,
            write: true,
            reset: true,
            write_zeroes: true,
            ..Self::default()
        }
    }
    /// NVMe bdevs.
    #[must_use]
    pub fn nvme() -> Self {
        Self {
            read: true,
            write: true,
            unmap: true,
            flush: true,
            reset: true,
            nvme: true,
            write_zeroes: true,
            nvme_extras: true,
            seek: false,
        }
    }

    /// The `supported_io_types` object.
    #[must_use]
    pub fn to_json(self) -> J {
        J::obj()
            .with("read", self.read)
            .with("write", self.write)
            .with("unmap", self.unmap)
            .with("flush", self.flush)
            .with("reset", self.reset)
            .with("nvme_admin", self.nvme)
            .with("nvme_io", self.nvme)
            .with("nvme_io_md", false)
            .with("write_zeroes", self.write_zeroes)
            .with("zcopy", false)
            .with("get_zone_info", false)
            .with("zone_management", false)
            .with("zone_append", false)
            .with("compare", self.nvme_extras)
            .with("compare_and_write", self.nvme_extras)
            .with("abort", self.nvme_extras)
            .with("seek_hole", self.seek)
            .with("seek_data", self.seek)
            .with("copy", self.nvme_extras)
            .with("nvme_iov_md", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aio() -> Bdev {
        Bdev {
            name: "aio0".into(),
            uuid: Uuid::new_v4(),
            aliases: vec![],
            block_size: 512,
            num_blocks: 8,
            claim: None,
            kind: BdevKind::Aio {
                filename: "/d".into(),
                block_size_override: false,
                readonly: false,
                fallocate: false,
            },
            backing: None,
        }
    }

    #[test]
    fn matches_name_alias_and_uuid() {
        let mut b = aio();
        b.aliases.push("lvs0/x".into());
        assert!(b.matches("aio0"));
        assert!(b.matches("lvs0/x"));
        assert!(b.matches(&b.uuid.to_string()));
        assert!(b.matches(&b.uuid.to_string().to_uppercase()));
        assert!(!b.matches("aio1"));
    }

    #[test]
    fn io_types_of_an_aio_bdev_match_the_transcript() {
        let j = IoTypes::aio().to_json().to_compact();
        assert_eq!(
            j,
            r#"{"read":true,"write":true,"unmap":false,"flush":true,"reset":true,"nvme_admin":false,"nvme_io":false,"nvme_io_md":false,"write_zeroes":true,"zcopy":false,"get_zone_info":false,"zone_management":false,"zone_append":false,"compare":false,"compare_and_write":false,"abort":false,"seek_hole":false,"seek_data":false,"copy":false,"nvme_iov_md":false}"#
        );
    }

    #[test]
    fn claim_types() {
        assert_eq!(
            Claimer::Lvstore(Uuid::nil()).claim_type(),
            "read_many_write_one"
        );
        assert_eq!(Claimer::Raid("r".into()).claim_type(), "exclusive_write");
    }
}
