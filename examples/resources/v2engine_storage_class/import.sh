# Import by class name.
terraform import v2engine_storage_class.replicated replicated
