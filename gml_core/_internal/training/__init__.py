"""Training glue around mmengine's Runner."""
