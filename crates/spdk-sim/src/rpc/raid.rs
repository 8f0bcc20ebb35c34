//! `bdev_raid_*`. Decode failures are -32700, as in SPDK's raid module.

use super::params::{Decoder, decode, names_or_string, uuid_str};
use crate::json::J;
use crate::rpc_error::{RpcError, errno, strerror};
use crate::state::Target;
use crate::state::bdev::Claimer;
use crate::state::raid::{Raid, RaidLevel, RaidState, Rebuild, Slot};
use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;
use std::time::Instant;
use uuid::Uuid;

fn level<'de, D: Deserializer<'de>>(d: D) -> Result<RaidLevel, D::Error> {
    let s = String::deserialize(d)?;
    RaidLevel::parse(&s).ok_or_else(|| D::Error::custom(format!("unsupported raid level {s}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
    #[serde(deserialize_with = "level")]
    raid_level: RaidLevel,
    #[serde(deserialize_with = "names_or_string::deserialize")]
    base_bdevs: Vec<String>,
    strip_size_kb: Option<u32>,
    #[serde(default, deserialize_with = "uuid_str::deserialize")]
    uuid: Option<Uuid>,
    superblock: Option<bool>,
}

fn create_failed(name: &str, e: i32) -> RpcError {
    RpcError::new(
        -i64::from(e),
        format!("Failed to create RAID bdev {name}: {}", strerror(e)),
    )
}

/// `bdev_raid_create`. raid1 with a strip size is -22; a taken name -17; a member already claimed
/// -1; a missing member is not an error: the raid waits in `configuring`.
///
/// # Errors
/// As described, with SPDK's "Failed to create RAID bdev <name>: <strerror>" messages.
pub fn create(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: Create = decode(params, Decoder::Raid)?;
    let strip = p.strip_size_kb.unwrap_or(0);
    let fail = |e| create_failed(&p.name, e);
    let strip_ok = match p.raid_level {
        RaidLevel::Raid1 => strip == 0 && p.base_bdevs.len() >= 2,
        RaidLevel::Raid0 | RaidLevel::Concat => {
            strip > 0 && strip.is_power_of_two() && !p.base_bdevs.is_empty()
        }
    };
    let mut unique = p.base_bdevs.clone();
    unique.sort();
    unique.dedup();
    if !strip_ok || unique.len() != p.base_bdevs.len() || p.name.is_empty() {
        return Err(fail(errno::EINVAL));
    }
    if t.raids.iter().any(|r| r.name == p.name) || t.name_taken(&p.name) {
        return Err(fail(errno::EEXIST));
    }
    let present: Vec<(usize, crate::state::bdev::Bdev)> = p
        .base_bdevs
        .iter()
        .enumerate()
        .filter_map(|(i, n)| t.bdev(n).cloned().map(|b| (i, b)))
        .collect();
    if present.iter().any(|(_, b)| b.claim.is_some()) {
        return Err(fail(errno::EPERM));
    }
    if present
        .windows(2)
        .any(|w| w[0].1.block_size != w[1].1.block_size)
    {
        return Err(fail(errno::EINVAL));
    }
    let superblock = p.superblock.unwrap_or(false);
    t.raids.push(Raid {
        name: p.name.clone(),
        uuid: p.uuid.or_else(|| superblock.then(Uuid::new_v4)),
        level: p.raid_level,
        strip_size_kb: strip,
        superblock,
        state: RaidState::Configuring,
        slots: p.base_bdevs.iter().map(|n| Slot::waiting(n)).collect(),
        process: None,
        block_size: 0,
        num_blocks: 0,
        seq: 0,
    });
    let ri = t.raids.len() - 1;
    for (si, bdev) in &present {
        t.configure_slot(ri, *si, bdev);
    }
    t.maybe_online(ri);
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetBdevs {
    category: String,
}

/// `bdev_raid_get_bdevs {category}` (required: all / online / configuring / offline).
///
/// # Errors
/// -32700 without `category`; for an unknown one -22 (v24.09) or, from v26.05 on, where the
/// category is decoded as an enum, the decode failure -32700.
pub fn get_bdevs(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: GetBdevs = decode(params, Decoder::Raid)?;
    let filter = match p.category.as_str() {
        "all" => None,
        "online" => Some(RaidState::Online),
        "configuring" => Some(RaidState::Configuring),
        "offline" => Some(RaidState::Offline),
        _ if t.version.answers_as_v26_05() => return Err(Decoder::Raid.failure()),
        _ => return Err(RpcError::errno(errno::EINVAL)),
    };
    let now = Instant::now();
    let list = t
        .raids
        .iter()
        .filter(|r| filter.is_none_or(|s| s == r.state))
        .map(|r| r.get_bdevs_json(now, t.window_blocks(r.block_size)))
        .collect();
    Ok(J::Arr(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameOnly {
    name: String,
}

/// `bdev_raid_delete {name}`: releases the members; nothing is wiped.
///
/// # Errors
/// -19 "raid bdev <name> not found".
pub fn delete(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: NameOnly = decode(params, Decoder::Raid)?;
    if !t.raids.iter().any(|r| r.name == p.name) {
        return Err(RpcError::new(
            -i64::from(errno::ENODEV),
            format!("raid bdev {} not found", p.name),
        ));
    }
    t.delete_raid(&p.name);
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBase {
    raid_bdev: String,
    base_bdev: String,
}

/// `bdev_raid_add_base_bdev {raid_bdev, base_bdev}`: fills a free slot; on an online raid1 this
/// starts a rebuild shown as `process` until it completes.
///
/// # Errors
/// In SPDK's order: -19 unknown raid, -1 a rebuild running, -22 no free slot (so also for a
/// missing bdev when the raid is full), -19 unknown bdev, -1 bdev claimed.
pub fn add_base_bdev(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: AddBase = decode(params, Decoder::Raid)?;
    let Some(ri) = t.raids.iter().position(|r| r.name == p.raid_bdev) else {
        return Err(RpcError::new(
            -i64::from(errno::ENODEV),
            format!("raid bdev {} is not found in config", p.raid_bdev),
        ));
    };
    let fail = |e| {
        RpcError::new(
            -i64::from(e),
            format!(
                "Failed to add base bdev {} to RAID bdev {}: {}",
                p.base_bdev,
                p.raid_bdev,
                strerror(e)
            ),
        )
    };
    // SPDK's order (raid_bdev_add_base_bdev): a running process, then a free slot, and only
    // then the bdev itself (opened and claimed by the slot's configuration).
    let raid = &t.raids[ri];
    if raid.process.is_some() {
        return Err(fail(errno::EPERM));
    }
    let Some(si) = raid
        .slots
        .iter()
        .position(|s| s.name.is_none() && !s.configured)
    else {
        return Err(fail(errno::EINVAL));
    };
    let bdev = t
        .bdev(&p.base_bdev)
        .cloned()
        .ok_or_else(|| fail(errno::ENODEV))?;
    if bdev.claim.is_some() {
        return Err(fail(errno::EPERM));
    }
    let raid = &t.raids[ri];
    if raid.block_size != 0 && raid.block_size != bdev.block_size {
        return Err(fail(errno::EINVAL));
    }
    let online = raid.state == RaidState::Online;
    t.raids[ri].slots[si].name = Some(p.base_bdev.clone());
    t.configure_slot(ri, si, &bdev);
    if online {
        let duration = t.rebuild_duration(t.raids[ri].num_blocks, t.raids[ri].block_size);
        let raid = &mut t.raids[ri];
        raid.slots[si].data_size = raid.num_blocks;
        raid.process = Some(Rebuild {
            target: p.base_bdev,
            slot: si,
            started: Instant::now(),
            duration,
        });
    } else {
        t.maybe_online(ri);
    }
    Ok(J::Bool(true))
}

/// `bdev_raid_remove_base_bdev {name}` (the member's name): raid1 stays online with fewer
/// members; the last member's removal deletes the raid.
///
/// # Errors
/// -19 "Failed to remove base bdev from raid bdev" when it is not a member.
pub fn remove_base_bdev(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: NameOnly = decode(params, Decoder::Raid)?;
    let not_member = || {
        RpcError::new(
            -i64::from(errno::ENODEV),
            "Failed to remove base bdev from raid bdev",
        )
    };
    let bdev = t.bdev(&p.name).cloned().ok_or_else(not_member)?;
    let Some(Claimer::Raid(raid)) = bdev.claim else {
        return Err(not_member());
    };
    t.set_claim(&bdev.name, None);
    t.remove_raid_member(&raid, &bdev.name);
    Ok(J::Bool(true))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetOptions {
    process_window_size_kb: Option<u64>,
    process_max_bandwidth_mb_sec: Option<u64>,
}

/// `bdev_raid_set_options`.
///
/// # Errors
/// -32700 decode failure, -22 for a zero window.
pub fn set_options(t: &mut Target, params: Option<Value>) -> Result<J, RpcError> {
    let p: SetOptions = decode(params, Decoder::Raid)?;
    if p.process_window_size_kb == Some(0) {
        return Err(RpcError::errno(errno::EINVAL));
    }
    if let Some(w) = p.process_window_size_kb {
        t.raid_opts.process_window_size_kb = w;
    }
    if let Some(bw) = p.process_max_bandwidth_mb_sec {
        t.raid_opts.process_max_bandwidth_mb_sec = bw;
    }
    Ok(J::Bool(true))
}
