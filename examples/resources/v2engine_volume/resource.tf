# A 10 GiB volume with replicas on two nodes, attached to node-1.
resource "v2engine_volume" "data" {
  name          = "data"
  size          = "10Gi"
  storage_class = "replicated"
  attach_node   = "node-1"
}

output "data_replicas" {
  value = v2engine_volume.data.replicas
}
