"""Baby Monitor: on-device crying and laughter detection for Home Assistant."""
