"""Method handlers by area; importing this package registers them all."""
