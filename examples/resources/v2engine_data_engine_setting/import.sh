# The setting's id is always "cluster".
terraform import v2engine_data_engine_setting.this cluster
