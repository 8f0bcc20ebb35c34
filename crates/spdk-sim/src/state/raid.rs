//! Raid bdevs: slots, states, rebuild progress and their JSON (pure logic, no registry access).

use crate::json::J;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Raid levels the simulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaidLevel {
    /// raid0 (striping).
    Raid0,
    /// raid1 (mirroring).
    Raid1,
    /// concat.
    Concat,
}

impl RaidLevel {
    /// Parses `raid_level` as SPDK does (case-insensitive, `raid1` or `1`, ...). `raid5f` is
    /// a valid SPDK level the simulator does not implement: it returns `None` like an unknown one.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "raid0" | "0" => Some(Self::Raid0),
            "raid1" | "1" => Some(Self::Raid1),
            "concat" => Some(Self::Concat),
            _ => None,
        }
    }

    /// The name SPDK prints.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raid0 => "raid0",
            Self::Raid1 => "raid1",
            Self::Concat => "concat",
        }
    }
}

/// Raid state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaidState {
    /// All (or, for raid1, enough) members present; registered as a bdev.
    Online,
    /// Waiting for members; not a bdev yet.
    Configuring,
    /// Lost a member it cannot do without (raid0/concat).
    Offline,
}

impl RaidState {
    /// The name SPDK prints.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Configuring => "configuring",
            Self::Offline => "offline",
        }
    }
}

/// One base bdev slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Name as given at creation (or by examine); `None` after removal.
    pub name: Option<String>,
    /// Registry name of the claimed bdev while configured.
    pub bdev: Option<String>,
    /// UUID of the member (kept after removal while configuring, zeroed while online).
    pub uuid: Option<Uuid>,
    /// Member present and claimed.
    pub configured: bool,
    /// Removed from an online raid (counts against `num_base_bdevs_operational`).
    pub failed: bool,
    /// Data offset in blocks (superblock raids reserve the start of each member).
    pub data_offset: u64,
    /// Data size in blocks.
    pub data_size: u64,
    /// Member UUID as the superblock remembers it (kept after removal).
    pub sb_uuid: Option<Uuid>,
    /// Data offset as the superblock remembers it (kept after removal).
    pub sb_offset: u64,
}

impl Slot {
    /// A slot waiting for `name`.
    #[must_use]
    pub fn waiting(name: &str) -> Self {
        Self {
            name: Some(name.to_owned()),
            bdev: None,
            uuid: None,
            configured: false,
            failed: false,
            data_offset: 0,
            data_size: 0,
            sb_uuid: None,
            sb_offset: 0,
        }
    }
}

/// A rebuild onto one slot; progress is a function of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuild {
    /// Name shown as `target`.
    pub target: String,
    /// Slot being rebuilt.
    pub slot: usize,
    /// Start time.
    pub started: Instant,
    /// How long the whole rebuild takes.
    pub duration: Duration,
}

/// Size of a member that a raid can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberGeometry {
    /// Member block size.
    pub block_size: u32,
    /// Member size in blocks.
    pub num_blocks: u64,
    /// Member optimal I/O boundary in blocks (lvols: one cluster), 0 if none.
    pub optimal_io_boundary: u64,
}

/// Data offset SPDK reserves on a member of a superblock raid: 1 MiB, aligned up to the
/// member's optimal I/O boundary (4 MiB clusters give 8192 blocks of 512 bytes; an NVMe bdev 2048).
#[must_use]
pub fn superblock_data_offset(g: MemberGeometry) -> u64 {
    let min = (1024 * 1024) / u64::from(g.block_size.max(1));
    if g.optimal_io_boundary == 0 {
        min
    } else {
        min.div_ceil(g.optimal_io_boundary) * g.optimal_io_boundary
    }
}

/// A raid bdev.
#[derive(Debug, Clone, PartialEq)]
pub struct Raid {
    /// Name.
    pub name: String,
    /// UUID once known (given, superblock, or assigned when it goes online).
    pub uuid: Option<Uuid>,
    /// Level.
    pub level: RaidLevel,
    /// Strip size in KiB (0 for raid1).
    pub strip_size_kb: u32,
    /// On-disk superblock.
    pub superblock: bool,
    /// State.
    pub state: RaidState,
    /// Slots in order.
    pub slots: Vec<Slot>,
    /// Running rebuild.
    pub process: Option<Rebuild>,
    /// Block size (from the first member).
    pub block_size: u32,
    /// Size of the raid bdev in blocks once online.
    pub num_blocks: u64,
    /// Superblock sequence number (incremented on every superblock write).
    pub seq: u64,
}

/// State of a member in a superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SbState {
    /// Present and in sync.
    Configured,
    /// Removed or failed.
    Failed,
}

/// One member as recorded in a superblock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SbSlot {
    /// Member UUID.
    pub uuid: Option<Uuid>,
    /// Member state.
    pub state: SbState,
    /// Data offset in blocks.
    pub data_offset: u64,
    /// Data size in blocks.
    pub data_size: u64,
}

/// The raid superblock written on each member of a `superblock: true` raid. Deleting the raid
/// does not wipe it; examine re-assembles the raid from it (the newest copy wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Superblock {
    /// Raid UUID.
    pub raid_uuid: Uuid,
    /// Raid name.
    pub name: String,
    /// Level.
    pub level: String,
    /// Strip size.
    pub strip_size_kb: u32,
    /// Sequence number.
    pub seq: u64,
    /// Block size.
    pub block_size: u32,
    /// Raid size in blocks.
    pub num_blocks: u64,
    /// Members.
    pub slots: Vec<SbSlot>,
}

impl Superblock {
    /// The slot recording member `uuid`.
    #[must_use]
    pub fn slot_of(&self, uuid: Uuid) -> Option<usize> {
        self.slots.iter().position(|s| s.uuid == Some(uuid))
    }
}

impl Raid {
    /// The superblock describing the raid now.
    #[must_use]
    pub fn superblock(&self) -> Option<Superblock> {
        let raid_uuid = self.uuid?;
        Some(Superblock {
            raid_uuid,
            name: self.name.clone(),
            level: self.level.as_str().to_owned(),
            strip_size_kb: self.strip_size_kb,
            seq: self.seq,
            block_size: self.block_size,
            num_blocks: self.num_blocks,
            slots: self
                .slots
                .iter()
                .map(|s| SbSlot {
                    uuid: s.sb_uuid,
                    state: if s.configured {
                        SbState::Configured
                    } else {
                        SbState::Failed
                    },
                    data_offset: s.sb_offset,
                    data_size: s.data_size,
                })
                .collect(),
        })
    }

    /// A configuring raid re-created from a superblock (members still to be claimed).
    #[must_use]
    pub fn from_superblock(sb: &Superblock) -> Option<Self> {
        let level = RaidLevel::parse(&sb.level)?;
        Some(Self {
            name: sb.name.clone(),
            uuid: Some(sb.raid_uuid),
            level,
            strip_size_kb: sb.strip_size_kb,
            superblock: true,
            state: RaidState::Configuring,
            slots: sb
                .slots
                .iter()
                .map(|s| Slot {
                    name: None,
                    bdev: None,
                    uuid: None,
                    configured: false,
                    failed: s.state == SbState::Failed,
                    data_offset: s.data_offset,
                    data_size: s.data_size,
                    sb_uuid: s.uuid,
                    sb_offset: s.data_offset,
                })
                .collect(),
            process: None,
            block_size: sb.block_size,
            num_blocks: sb.num_blocks,
            seq: sb.seq,
        })
    }

    /// Members needed before the raid can go online (all but the failed ones).
    #[must_use]
    pub fn required(&self) -> usize {
        self.slots.iter().filter(|s| !s.failed).count()
    }

    /// Members present.
    #[must_use]
    pub fn discovered(&self) -> usize {
        self.slots.iter().filter(|s| s.configured).count()
    }

    /// Members not failed.
    #[must_use]
    pub fn operational(&self) -> usize {
        self.slots.iter().filter(|s| !s.failed).count()
    }

    /// Index of the slot holding registry bdev `bdev`.
    #[must_use]
    pub fn slot_of(&self, bdev: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.bdev.as_deref() == Some(bdev))
    }

    /// Computes per-slot data sizes and the raid size when all configured members are known.
    pub fn compute_geometry(&mut self) {
        let sizes: Vec<u64> = self
            .slots
            .iter()
            .filter(|s| s.configured)
            .map(|s| s.data_size)
            .collect();
        let Some(&min) = sizes.iter().min() else {
            return;
        };
        let strip_blocks = u64::from(self.strip_size_kb) * 1024 / u64::from(self.block_size.max(1));
        match self.level {
            RaidLevel::Raid1 => {
                for s in self.slots.iter_mut().filter(|s| s.configured) {
                    s.data_size = min;
                }
                self.num_blocks = min;
            }
            RaidLevel::Raid0 => {
                let per = min
                    .checked_div(strip_blocks)
                    .map_or(min, |n| n * strip_blocks);
                for s in self.slots.iter_mut().filter(|s| s.configured) {
                    s.data_size = per;
                }
                self.num_blocks = per * self.slots.len() as u64;
            }
            RaidLevel::Concat => {
                self.num_blocks = sizes.iter().sum();
            }
        }
    }

    /// Finishes a rebuild whose time is up.
    pub fn tick(&mut self, now: Instant) {
        if let Some(p) = &self.process
            && now.duration_since(p.started) >= p.duration
        {
            self.process = None;
        }
    }

    /// Rebuild progress at `now`: (blocks, percent), stepping by `window_blocks`.
    #[must_use]
    pub fn progress(&self, now: Instant, window_blocks: u64) -> Option<(u64, u64)> {
        let p = self.process.as_ref()?;
        let total = self.num_blocks.max(1);
        let elapsed = now.duration_since(p.started).as_secs_f64();
        let fraction = if p.duration.is_zero() {
            1.0
        } else {
            (elapsed / p.duration.as_secs_f64()).min(1.0)
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let raw = (fraction * total as f64) as u64;
        let window = window_blocks.max(1);
        let blocks = (raw / window * window).min(total.saturating_sub(1));
        Some((blocks, blocks * 100 / total))
    }

    /// The raid info object (`driver_specific.raid`, and the tail of a `bdev_raid_get_bdevs` entry).
    #[must_use]
    pub fn info_json(&self, now: Instant, window_blocks: u64) -> J {
        let zero = Uuid::nil().to_string();
        let uuid = self.uuid.map_or(zero.clone(), |u| u.to_string());
        let mut j = J::obj()
            .with("uuid", uuid)
            .with("strip_size_kb", self.strip_size_kb)
            .with("state", self.state.as_str())
            .with("raid_level", self.level.as_str())
            .with("superblock", self.superblock)
            .with("num_base_bdevs", self.slots.len() as u64)
            .with("num_base_bdevs_discovered", self.discovered() as u64)
            .with("num_base_bdevs_operational", self.operational() as u64);
        if let (Some(p), Some((blocks, percent))) =
            (&self.process, self.progress(now, window_blocks))
        {
            let progress = J::obj().with("blocks", blocks).with("percent", percent);
            j = j.with(
                "process",
                J::obj()
                    .with("type", "rebuild")
                    .with("target", p.target.as_str())
                    .with("progress", progress),
            );
        }
        let list: Vec<J> = self
            .slots
            .iter()
            .map(|s| {
                J::obj()
                    .with("name", s.name.clone())
                    .with("uuid", s.uuid.map_or(zero.clone(), |u| u.to_string()))
                    .with("is_configured", s.configured)
                    .with("data_offset", s.data_offset)
                    .with("data_size", s.data_size)
            })
            .collect();
        j.with("base_bdevs_list", list)
    }

    /// A `bdev_raid_get_bdevs` entry: `name`, `uuid`, then the info object, which starts with
    /// `uuid` again (SPDK v24.09 writes the key twice).
    #[must_use]
    pub fn get_bdevs_json(&self, now: Instant, window_blocks: u64) -> J {
        let uuid = self.uuid.unwrap_or_else(Uuid::nil).to_string();
        let mut fields = vec![
            ("name".to_owned(), J::from(self.name.as_str())),
            ("uuid".to_owned(), J::from(uuid)),
        ];
        if let J::Obj(info) = self.info_json(now, window_blocks) {
            fields.extend(info);
        }
        J::Obj(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raid1(n: u64) -> Raid {
        let slot = |name: &str| Slot {
            name: Some(name.into()),
            bdev: Some(name.into()),
            uuid: Some(Uuid::new_v4()),
            configured: true,
            failed: false,
            data_offset: 0,
            data_size: n,
            sb_uuid: None,
            sb_offset: 0,
        };
        Raid {
            name: "raid1a".into(),
            uuid: Some(Uuid::new_v4()),
            level: RaidLevel::Raid1,
            strip_size_kb: 0,
            superblock: false,
            state: RaidState::Online,
            slots: vec![slot("a"), slot("b")],
            process: None,
            block_size: 512,
            num_blocks: n,
            seq: 0,
        }
    }

    #[test]
    fn levels() {
        assert_eq!(RaidLevel::parse("RAID1"), Some(RaidLevel::Raid1));
        assert_eq!(RaidLevel::parse("1"), Some(RaidLevel::Raid1));
        assert_eq!(RaidLevel::parse("raid9"), None);
    }

    #[test]
    fn uuid_appears_twice_in_get_bdevs() {
        let r = raid1(262_144);
        let text = r.get_bdevs_json(Instant::now(), 2048).to_compact();
        assert_eq!(text.matches("\"uuid\":").count(), 2 + 2);
        assert!(text.starts_with(&format!(
            "{{\"name\":\"raid1a\",\"uuid\":\"{0}\",\"uuid\":\"{0}\"",
            r.uuid.unwrap()
        )));
    }

    #[test]
    fn rebuild_progress_advances_then_completes() {
        let mut r = raid1(262_144);
        let t0 = Instant::now();
        r.process = Some(Rebuild {
            target: "b".into(),
            slot: 1,
            started: t0,
            duration: Duration::from_secs(10),
        });
        assert_eq!(r.progress(t0, 2048), Some((0, 0)));
        let (blocks, percent) = r.progress(t0 + Duration::from_secs(4), 2048).unwrap();
        assert_eq!((blocks, percent), (104_448, 39));
        assert!(
            r.info_json(t0, 2048)
                .to_compact()
                .contains("\"process\":{\"type\":\"rebuild\",\"target\":\"b\"")
        );
        r.tick(t0 + Duration::from_secs(9));
        assert!(r.process.is_some());
        r.tick(t0 + Duration::from_secs(10));
        assert!(r.process.is_none());
    }

    #[test]
    fn geometry_uses_the_smallest_member() {
        let mut r = raid1(100);
        r.slots[1].data_size = 80;
        r.compute_geometry();
        assert_eq!(r.num_blocks, 80);
        assert!(r.slots.iter().all(|s| s.data_size == 80));
    }

    #[test]
    fn superblock_roundtrip_keeps_failed_members() {
        let mut r = raid1(253_952);
        r.superblock = true;
        r.seq = 4;
        r.slots[0].sb_uuid = r.slots[0].uuid;
        r.slots[1].sb_uuid = r.slots[1].uuid;
        r.slots[1].sb_offset = 2048;
        r.slots[1].configured = false;
        r.slots[1].failed = true;
        let sb = r.superblock().unwrap();
        assert_eq!(sb.slots[1].state, SbState::Failed);
        let back = Raid::from_superblock(&sb).unwrap();
        assert_eq!(back.state, RaidState::Configuring);
        assert_eq!(back.required(), 1);
        assert_eq!(back.slots[1].data_offset, 2048);
        assert_eq!(back.slots[1].sb_uuid, r.slots[1].uuid);
        assert_eq!(back.uuid, r.uuid);
        assert_eq!(sb.slot_of(r.slots[0].uuid.unwrap()), Some(0));
    }

    #[test]
    fn superblock_offsets_match_the_transcripts() {
        let lvol = MemberGeometry {
            block_size: 512,
            num_blocks: 262_144,
            optimal_io_boundary: 8192,
        };
        let nvme = MemberGeometry {
            block_size: 512,
            num_blocks: 262_144,
            optimal_io_boundary: 0,
        };
        assert_eq!(superblock_data_offset(lvol), 8192);
        assert_eq!(superblock_data_offset(nvme), 2048);
    }
}
