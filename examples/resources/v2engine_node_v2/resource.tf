# A small node opts out of the V2 data engine.
resource "v2engine_node_v2" "small" {
  node    = "node-1"
  enabled = false
}

# Another gets two cores and systemd boot persistence.
resource "v2engine_node_v2" "big" {
  node             = "node-2"
  cpu_mask         = "0x3"
  boot_persistence = "systemd"
  tags             = ["fast"]
}
