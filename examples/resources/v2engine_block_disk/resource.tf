# A raw disk becomes an aio bdev with an lvstore; an existing lvstore is imported.
resource "v2engine_block_disk" "node1_disk1" {
  node = "node-1"
  name = "disk-1"
  path = "/dev/disk/by-id/nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T123456"
  tags = ["nvme"]
}
