resource "v2engine_storage_class" "replicated" {
  name               = "replicated"
  number_of_replicas = 2
  data_locality      = "best-effort"
  frontend           = "nvmf"
}
