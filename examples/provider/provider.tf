terraform {
  required_providers {
    v2engine = {
      source = "v2engine/v2engine"
    }
  }
}

variable "nodes" {
  description = "Node name => { endpoint = \"ssh://root@ADDRESS:22\" }"
  type        = map(object({ endpoint = string }))
}

provider "v2engine" {
  nodes                = var.nodes
  ssh_private_key_file = pathexpand("~/.ssh/id_ed25519")
  ssh_known_hosts_file = pathexpand("~/.ssh/known_hosts")
}
