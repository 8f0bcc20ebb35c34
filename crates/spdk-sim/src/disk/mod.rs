//! Persistence of lvstores on the backing file or block device.

pub mod device;
pub mod meta;
