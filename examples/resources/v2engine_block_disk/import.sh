# Import by node/name.
terraform import v2engine_block_disk.node1_disk1 node-1/disk-1
