# Import by volume name.
terraform import v2engine_volume.data data
