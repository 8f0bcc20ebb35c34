# v2engine quickstart: turn the V2 data engine on across the lab (or your fleet), see which
# nodes need a reboot before anything changes, hand it the raw disks, define a replicated
# storage class, and create a volume mirrored across two nodes.
#
#   terraform init && terraform plan -var-file=LAB_DIR/terraform.tfvars.json
#
# `v2engine-lab up` writes terraform.tfvars.json with these variables.

terraform {
  required_providers {
    v2engine = {
      source = "v2engine/v2engine"
    }
  }
}

provider "v2engine" {
  nodes                = var.nodes
  ssh_private_key_file = var.ssh_private_key_file
  ssh_known_hosts_file = var.ssh_known_hosts_file
}

resource "v2engine_data_engine_setting" "this" {
  enabled            = true
  hugepage_limit_mib = var.hugepage_limit_mib
  cpu_mask           = "0x1"
}

# Every raw disk of every node becomes an aio bdev with an lvstore (an existing lvstore is
# imported). Disks of a node whose engine waits for a reboot are attached after it.
locals {
  disks = merge([
    for node, paths in var.disks : {
      for i, path in paths : "${node}/disk-${i + 1}" => { node = node, name = "disk-${i + 1}", path = path }
    }
  ]...)
}

resource "v2engine_block_disk" "this" {
  for_each = local.disks

  node = each.value.node
  name = each.value.name
  path = each.value.path

  depends_on = [v2engine_data_engine_setting.this]
}

resource "v2engine_storage_class" "replicated" {
  name               = "replicated"
  number_of_replicas = 2
  data_locality      = "best-effort"
}

# Two replicas on two different nodes (lvols exported over NVMe-oF TCP), mirrored by a
# raid1 on the attach node, which exports the volume at `nqn`. Created with its class and
# disks in one run, its placement is decided at apply; later plans show it.
resource "v2engine_volume" "data" {
  name          = "data"
  size          = var.volume_size
  storage_class = v2engine_storage_class.replicated.name
  attach_node   = var.attach_node

  depends_on = [v2engine_block_disk.this]
}

output "reboot_required_nodes" {
  description = "Nodes whose hugepages need a reboot (known at plan time)."
  value       = v2engine_data_engine_setting.this.reboot_required_nodes
}

output "disks" {
  description = "Per disk: lvstore and capacity."
  value = {
    for id, d in v2engine_block_disk.this : id => {
      lvstore_uuid   = d.lvstore_uuid
      capacity_bytes = d.capacity_bytes
      free_bytes     = d.free_bytes
    }
  }
}

output "nodes" {
  description = "Per node: target hugepages and the predicted outcome."
  value       = v2engine_data_engine_setting.this.nodes
}

output "volume" {
  description = "The volume: where its replicas are, its state and the NQN to connect to."
  value = {
    replicas = v2engine_volume.data.replicas
    state    = v2engine_volume.data.state
    nqn      = v2engine_volume.data.nqn
  }
}
