# Facts about a node's host: hugepages allocatable right now, modules, tools.
data "v2engine_node" "n1" {
  node = "node-1"
}

output "allocatable_hugepages" {
  value = data.v2engine_node.n1.hugepages_allocatable_now
}
