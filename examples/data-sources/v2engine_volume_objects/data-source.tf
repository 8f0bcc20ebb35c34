# Every object the executors made for volumes, and the orphans among them: objects with
# v2engine's naming whose volume has no record. Orphans are reported (with a warning
# naming node and object), never deleted automatically.
data "v2engine_volume_objects" "all" {}

data "v2engine_volume_objects" "orphans" {
  orphans_only = true
}

output "orphans" {
  value = [for o in data.v2engine_volume_objects.orphans.objects : "${o.node}: ${o.kind} ${o.name}"]
}

# Nodes that are down or whose engine is not running cannot be listed; they say why.
output "unlisted_nodes" {
  value = { for u in data.v2engine_volume_objects.all.unlisted : u.node => u.reason }
}

# The objects of one volume on one node.
data "v2engine_volume_objects" "node1" {
  node = "node-1"
}

output "node1_objects_of_data" {
  value = [for o in data.v2engine_volume_objects.node1.objects : o.name if o.volume == "data"]
}
