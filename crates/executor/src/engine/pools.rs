//! SPDK's memory pools sized to the engine's memory (pure).
//!
//! spdk_tgt allocates its pools (iobuf buffers, bdev_io, the thread message pool, the
//! iSCSI target's PDU and data pools) from the `-s` memory at start. SPDK's defaults need
//! about 840-930 MiB (measured on real v24.09 and v26.05, with 2 MiB hugepages and with
//! `--no-huge`); with less, spdk_tgt exits during start-up ("Init subsystem iscsi failed").
//!
//! [`pools_for`] scales every pool linearly between [`SMALL`] at [`MIN_MEMORY_MIB`] (the
//! model's minimum) and SPDK's defaults ([`DEFAULT`]) at [`FULL_MEMORY_MIB`]: a pool's
//! memory is its count times a fixed element size, so a mix of two configurations that
//! fit their memory fits the same mix of the memories. Measured on both versions, both
//! memory kinds, at 256, 320, 384, 512, 640, 768, 896 and 1022 MiB: every size started and
//! served an aio bdev, an lvstore, a thin lvol and the NVMe-oF TCP transport.
//! From [`FULL_MEMORY_MIB`] on SPDK keeps its defaults and needs no configuration.
//!
//! The per-thread caches (bdev's iobuf and bdev_io caches) are taken from the pools by
//! every SPDK thread; they are bounded so that half of a pool serves all the cores of the
//! mask (a cache that cannot be filled makes SPDK refuse the thread's bdev channel).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The smallest engine memory the model accepts (MiB).
pub const MIN_MEMORY_MIB: u64 = model::validate::MIN_HUGEPAGE_MIB.unsigned_abs();
/// From this memory on (MiB), SPDK's default pools fit.
pub const FULL_MEMORY_MIB: u64 = 1024;

/// SPDK's default message pool size (`--msg-mempool-size`).
pub const DEFAULT_MSG_MEMPOOL_SIZE: u64 = 262_143;
/// SPDK's default per-thread caches: bdev's iobuf small and large, bdev_io.
const DEFAULT_IOBUF_SMALL_CACHE: u64 = 128;
const DEFAULT_IOBUF_LARGE_CACHE: u64 = 16;
const DEFAULT_BDEV_IO_CACHE: u64 = 256;
/// SPDK threads per core that take per-thread iobuf caches: NVMe-oF and iSCSI poll groups,
/// and the app thread's share.
const THREADS_PER_CORE: u64 = 3;
/// Threads beyond those: raid rebuild (process) threads and other on-demand threads.
const EXTRA_THREADS: u64 = 8;
/// The NVMe-oF TCP buffer cache per poll group the pools aim for.
const DEFAULT_NVMF_BUF_CACHE: u64 = 32;
/// iSCSI connections per session: SPDK's default, kept at every size.
const ISCSI_CONNECTIONS_PER_SESSION: u64 = 2;

/// The pool counts that scale with memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    /// `iobuf_set_options.small_pool_count` (8 KiB buffers).
    pub iobuf_small: u64,
    /// `iobuf_set_options.large_pool_count` (132 KiB buffers).
    pub iobuf_large: u64,
    /// `bdev_set_options.bdev_io_pool_size`.
    pub bdev_io: u64,
    /// `iscsi_set_options.max_sessions`.
    pub iscsi_sessions: u64,
    /// `iscsi_set_options.immediate_data_pool_size` (SPDK refuses to start below 384).
    pub iscsi_immediate_data: u64,
    /// `iscsi_set_options.data_out_pool_size` (SPDK refuses to start below 384).
    pub iscsi_data_out: u64,
    /// `iscsi_set_options.pdu_pool_size` (SPDK refuses to start below 384).
    pub iscsi_pdu: u64,
    /// `--msg-mempool-size`.
    pub msg_mempool: u64,
}

/// The pools at [`MIN_MEMORY_MIB`]: measured to start and serve on v24.09 and v26.05 with
/// `-s 256` (hugepages: v24.09 from 224 MiB, v26.05 from 160; `--no-huge`: v24.09 from
/// 240, v26.05 from 160).
pub const SMALL: PoolCounts = PoolCounts {
    iobuf_small: 1024,
    iobuf_large: 256,
    bdev_io: 4095,
    iscsi_sessions: 24,
    iscsi_immediate_data: 1024,
    iscsi_data_out: 512,
    iscsi_pdu: 4096,
    msg_mempool: 32_767,
};

/// SPDK's defaults (v24.09 and v26.05): they start from 864 MiB of hugepages / 928 MiB
/// `--no-huge` on v24.09, 832 / 856 MiB on v26.05.
pub const DEFAULT: PoolCounts = PoolCounts {
    iobuf_small: 8192,
    iobuf_large: 1024,
    bdev_io: 65_535,
    iscsi_sessions: 128,
    iscsi_immediate_data: 16_384,
    iscsi_data_out: 2048,
    iscsi_pdu: 36_864,
    msg_mempool: DEFAULT_MSG_MEMPOOL_SIZE,
};

/// SPDK's pools for one engine: the counts and the per-thread caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpdkPools {
    /// iobuf small buffers.
    pub iobuf_small: u64,
    /// iobuf large buffers.
    pub iobuf_large: u64,
    /// bdev_io objects.
    pub bdev_io: u64,
    /// bdev_io objects cached per thread.
    pub bdev_io_cache: u64,
    /// bdev's small iobuf cache per thread.
    pub iobuf_small_cache: u64,
    /// bdev's large iobuf cache per thread.
    pub iobuf_large_cache: u64,
    /// The NVMe-oF TCP transport's shared buffers (`num_shared_buffers`).
    pub nvmf_shared_buffers: u64,
    /// Its buffer cache per poll group (`buf_cache_size`): taken from the small and the
    /// large pool alike.
    pub nvmf_buf_cache: u64,
    /// iSCSI sessions.
    pub iscsi_sessions: u64,
    /// iSCSI immediate data buffers.
    pub iscsi_immediate_data: u64,
    /// iSCSI data-out buffers.
    pub iscsi_data_out: u64,
    /// iSCSI PDUs.
    pub iscsi_pdu: u64,
    /// The thread message pool (`--msg-mempool-size`).
    pub msg_mempool: u64,
}

fn lerp(small: u64, full: u64, num: u64, den: u64) -> u64 {
    small + (full - small) * num / den
}

/// The pools for `memory_mib` of engine memory and `cores` reactor cores; `None` when
/// SPDK's defaults fit (no configuration needed). Memory below [`MIN_MEMORY_MIB`] (which
/// the model refuses) gets the smallest pools.
pub fn pools_for(memory_mib: u64, cores: u64) -> Option<SpdkPools> {
    let den = FULL_MEMORY_MIB - MIN_MEMORY_MIB;
    let num = memory_mib.clamp(MIN_MEMORY_MIB, FULL_MEMORY_MIB) - MIN_MEMORY_MIB;
    let at = |s: u64, f: u64| lerp(s, f, num, den);
    let c = PoolCounts {
        iobuf_small: at(SMALL.iobuf_small, DEFAULT.iobuf_small),
        iobuf_large: at(SMALL.iobuf_large, DEFAULT.iobuf_large),
        bdev_io: at(SMALL.bdev_io, DEFAULT.bdev_io),
        iscsi_sessions: at(SMALL.iscsi_sessions, DEFAULT.iscsi_sessions),
        iscsi_immediate_data: at(SMALL.iscsi_immediate_data, DEFAULT.iscsi_immediate_data),
        iscsi_data_out: at(SMALL.iscsi_data_out, DEFAULT.iscsi_data_out),
        iscsi_pdu: at(SMALL.iscsi_pdu, DEFAULT.iscsi_pdu),
        msg_mempool: at(SMALL.msg_mempool, DEFAULT.msg_mempool),
    };
    let cores = cores.max(1);
    // Per-thread iobuf caches are taken by every SPDK thread that opens a bdev: the app
    // thread, a poll group per core for NVMe-oF and for iSCSI, and one thread per raid
    // rebuild ([`THREADS_PER_CORE`], [`EXTRA_THREADS`]); each takes bdev's cache and accel's
    // cache (the same sizes), and each NVMe-oF poll group the transport's cache from both
    // pools. Half of each pool is left for I/O. A thread whose cache cannot be filled gets
    // no channel: seen on real v26.05 at 256 MiB with SPDK's cache sizes, the raid1 rebuild
    // onto a new member failed ("Failed to populate 'accel' iobuf small buffer cache").
    let threads = THREADS_PER_CORE * cores + EXTRA_THREADS;
    let nvmf_buf_cache = DEFAULT_NVMF_BUF_CACHE
        .min(c.iobuf_large / (8 * cores))
        .max(1);
    let nvmf_shared_buffers = (nvmf_buf_cache * cores).max(c.iobuf_large / 4);
    let share = |pool: u64| (pool / 2).saturating_sub(nvmf_buf_cache * cores) / (2 * threads);
    let pools = SpdkPools {
        iobuf_small: c.iobuf_small,
        iobuf_large: c.iobuf_large,
        bdev_io: c.bdev_io,
        // SPDK requires bdev_io_pool_size >= cache * (threads + 1).
        bdev_io_cache: DEFAULT_BDEV_IO_CACHE.min(c.bdev_io / (2 * (cores + 1))),
        iobuf_small_cache: DEFAULT_IOBUF_SMALL_CACHE.min(share(c.iobuf_small)),
        iobuf_large_cache: DEFAULT_IOBUF_LARGE_CACHE.min(share(c.iobuf_large)),
        nvmf_shared_buffers,
        nvmf_buf_cache,
        iscsi_sessions: c.iscsi_sessions,
        iscsi_immediate_data: c.iscsi_immediate_data,
        iscsi_data_out: c.iscsi_data_out,
        iscsi_pdu: c.iscsi_pdu,
        msg_mempool: c.msg_mempool,
    };
    (!pools.is_default()).then_some(pools)
}

impl SpdkPools {
    /// True when every pool and cache is SPDK's default (then SPDK's default transport fits
    /// too, and no configuration is written).
    pub fn is_default(&self) -> bool {
        self.iobuf_small == DEFAULT.iobuf_small
            && self.iobuf_large == DEFAULT.iobuf_large
            && self.bdev_io == DEFAULT.bdev_io
            && self.bdev_io_cache == DEFAULT_BDEV_IO_CACHE
            && self.iobuf_small_cache == DEFAULT_IOBUF_SMALL_CACHE
            && self.iobuf_large_cache == DEFAULT_IOBUF_LARGE_CACHE
            && self.iscsi_sessions == DEFAULT.iscsi_sessions
            && self.iscsi_immediate_data == DEFAULT.iscsi_immediate_data
            && self.iscsi_data_out == DEFAULT.iscsi_data_out
            && self.iscsi_pdu == DEFAULT.iscsi_pdu
            && self.msg_mempool == DEFAULT.msg_mempool
    }

    /// spdk_tgt's JSON configuration (`-c FILE`) setting these pools before its subsystems
    /// start: `iobuf_set_options`, `accel_set_options`, `bdev_set_options`,
    /// `iscsi_set_options`, and the NVMe-oF TCP transport with buffers that fit the pools
    /// (SPDK's default transport asks for 511 shared buffers and a cache of 383 per poll
    /// group, more than small pools hold; the executor finds the transport there and does not
    /// create it again), with parameters both v24.09 and v26.05 accept.
    pub fn json_config(&self) -> Value {
        json!({"subsystems": [
            {"subsystem": "iobuf", "config": [{"method": "iobuf_set_options", "params": {
                "small_pool_count": self.iobuf_small,
                "large_pool_count": self.iobuf_large,
            }}]},
            {"subsystem": "accel", "config": [{"method": "accel_set_options", "params": {
                "small_cache_size": self.iobuf_small_cache,
                "large_cache_size": self.iobuf_large_cache,
            }}]},
            {"subsystem": "bdev", "config": [{"method": "bdev_set_options", "params": {
                "bdev_io_pool_size": self.bdev_io,
                "bdev_io_cache_size": self.bdev_io_cache,
                "iobuf_small_cache_size": self.iobuf_small_cache,
                "iobuf_large_cache_size": self.iobuf_large_cache,
            }}]},
            {"subsystem": "iscsi", "config": [{"method": "iscsi_set_options", "params": {
                "max_sessions": self.iscsi_sessions,
                "max_connections_per_session": ISCSI_CONNECTIONS_PER_SESSION,
                "immediate_data_pool_size": self.iscsi_immediate_data,
                "data_out_pool_size": self.iscsi_data_out,
                "pdu_pool_size": self.iscsi_pdu,
            }}]},
            {"subsystem": "nvmf", "config": [{"method": "nvmf_create_transport", "params": {
                "trtype": "TCP",
                "num_shared_buffers": self.nvmf_shared_buffers,
                "buf_cache_size": self.nvmf_buf_cache,
            }}]},
        ]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(cfg: &Value, method: &str) -> Value {
        cfg["subsystems"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["config"].as_array().unwrap())
            .find(|c| c["method"] == method)
            .unwrap()["params"]
            .clone()
    }

    #[test]
    fn the_minimum_gets_the_measured_small_pools() {
        let p = pools_for(256, 1).unwrap();
        assert_eq!(p.iobuf_small, 1024);
        assert_eq!(p.iobuf_large, 256);
        assert_eq!(p.bdev_io, 4095);
        assert_eq!(p.msg_mempool, 32_767);
        let cfg = p.json_config();
        assert_eq!(
            params(&cfg, "iscsi_set_options"),
            json!({"max_sessions": 24, "max_connections_per_session": 2,
                "immediate_data_pool_size": 1024, "data_out_pool_size": 512,
                "pdu_pool_size": 4096})
        );
        assert_eq!(
            params(&cfg, "iobuf_set_options"),
            json!({"small_pool_count": 1024, "large_pool_count": 256})
        );
        // Below the minimum (refused by the model) nothing gets smaller.
        assert_eq!(pools_for(16, 1), Some(p));
    }

    #[test]
    fn from_full_memory_on_spdk_keeps_its_defaults() {
        assert_eq!(pools_for(1024, 1), None);
        assert_eq!(pools_for(2048, 1), None);
        assert_eq!(pools_for(1024 * 1024, 2), None);
        assert!(pools_for(1022, 1).is_some());
    }

    #[test]
    fn every_pool_grows_with_memory_and_stays_within_its_bounds() {
        let mut prev = pools_for(MIN_MEMORY_MIB, 1).unwrap();
        for mib in (MIN_MEMORY_MIB + 2..FULL_MEMORY_MIB).step_by(2) {
            let p = pools_for(mib, 1).unwrap();
            for (a, b) in [
                (prev.iobuf_small, p.iobuf_small),
                (prev.iobuf_large, p.iobuf_large),
                (prev.bdev_io, p.bdev_io),
                (prev.iscsi_sessions, p.iscsi_sessions),
                (prev.iscsi_immediate_data, p.iscsi_immediate_data),
                (prev.iscsi_data_out, p.iscsi_data_out),
                (prev.iscsi_pdu, p.iscsi_pdu),
                (prev.msg_mempool, p.msg_mempool),
            ] {
                assert!(a <= b, "{mib} MiB: a pool shrank ({a} > {b})");
            }
            assert!(p.iobuf_small <= DEFAULT.iobuf_small && p.bdev_io <= DEFAULT.bdev_io);
            // SPDK refuses iSCSI pools below 384 and iobuf pools below 64 / 8.
            assert!(p.iscsi_data_out >= 384 && p.iscsi_immediate_data >= 384);
            assert!(p.iscsi_pdu >= 384 && p.iobuf_small >= 64 && p.iobuf_large >= 8);
            prev = p;
        }
        // Halfway in memory is halfway between the two configurations.
        let mid = pools_for((MIN_MEMORY_MIB + FULL_MEMORY_MIB) / 2, 1).unwrap();
        assert_eq!(
            mid.iobuf_small,
            (SMALL.iobuf_small + DEFAULT.iobuf_small) / 2
        );
        assert_eq!(
            mid.iscsi_sessions,
            (SMALL.iscsi_sessions + DEFAULT.iscsi_sessions) / 2
        );
    }

    #[test]
    fn caches_leave_half_of_each_pool_for_the_cores() {
        for cores in [1, 2, 8, 64] {
            for mib in [256, 512, 1000] {
                let p = pools_for(mib, cores).unwrap();
                let threads = THREADS_PER_CORE * cores + EXTRA_THREADS;
                let nvmf = p.nvmf_buf_cache * cores;
                assert!(
                    2 * threads * p.iobuf_small_cache + nvmf <= p.iobuf_small / 2,
                    "{mib}/{cores}"
                );
                assert!(
                    2 * threads * p.iobuf_large_cache + nvmf <= p.iobuf_large / 2
                        || p.iobuf_large_cache == 0,
                    "{mib}/{cores}"
                );
                assert!(p.nvmf_shared_buffers >= nvmf, "{mib}/{cores}");
                assert!(p.bdev_io_cache * (cores + 1) <= p.bdev_io, "{mib}/{cores}");
            }
        }
        let one = pools_for(256, 1).unwrap();
        assert_eq!(
            (
                one.iobuf_small_cache,
                one.iobuf_large_cache,
                one.nvmf_buf_cache,
                one.nvmf_shared_buffers
            ),
            (21, 4, 32, 64),
            "256 MiB on one core: 11 threads' caches, one poll group's transport cache, half of each pool left"
        );
        let cfg = one.json_config();
        assert_eq!(
            params(&cfg, "accel_set_options"),
            json!({"small_cache_size": 21, "large_cache_size": 4})
        );
        assert_eq!(
            params(&cfg, "nvmf_create_transport"),
            json!({"trtype": "TCP", "num_shared_buffers": 64, "buf_cache_size": 32})
        );
        // Many cores with full memory: the pools are the defaults, the caches not.
        let many = pools_for(2048, 128).unwrap();
        assert_eq!(many.iobuf_small, DEFAULT.iobuf_small);
        assert!(many.iobuf_small_cache < 128);
        let cfg = many.json_config();
        assert_eq!(
            params(&cfg, "bdev_set_options")["iobuf_small_cache_size"],
            many.iobuf_small_cache
        );
    }
}
