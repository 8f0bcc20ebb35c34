variable "nodes" {
  description = "Node name => { endpoint }, e.g. { \"node-1\" = { endpoint = \"ssh://root@10.0.0.1:22\" } }."
  type        = map(object({ endpoint = string }))
}

variable "disks" {
  description = "Node name => list of raw disk paths; each becomes a v2engine_block_disk."
  type        = map(list(string))
  default     = {}
}

variable "ssh_private_key_file" {
  description = "Private key that logs in to every node."
  type        = string
}

variable "ssh_known_hosts_file" {
  description = "known_hosts with every node's host key."
  type        = string
}

variable "hugepage_limit_mib" {
  description = "Hugepage memory per node in MiB."
  type        = number
  default     = 256
}

variable "volume_size" {
  description = "Size of the quickstart volume."
  type        = string
  default     = "32Mi"
}

variable "attach_node" {
  description = "The node whose raid1 serves the volume."
  type        = string
  default     = "node-1"
}
