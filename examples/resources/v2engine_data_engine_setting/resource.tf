# Turn the V2 data engine on for every node, with 1 GiB of hugepages and one core each.
resource "v2engine_data_engine_setting" "this" {
  enabled            = true
  hugepage_limit_mib = 1024
  cpu_mask           = "0x1"
}

# Which nodes will need a reboot is known at plan time.
output "reboot_required_nodes" {
  value = v2engine_data_engine_setting.this.reboot_required_nodes
}
