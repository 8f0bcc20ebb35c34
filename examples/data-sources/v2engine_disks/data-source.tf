# Which block devices on node-1 could become disks, and why the others cannot.
data "v2engine_disks" "node1" {
  node = "node-1"
}

output "node1_eligible_disks" {
  value = data.v2engine_disks.node1.eligible_paths
}

output "node1_excluded_disks" {
  value = { for c in data.v2engine_disks.node1.candidates : c.path => c.excluded if !c.eligible }
}
