# Import by node name.
terraform import v2engine_node_v2.big node-2
