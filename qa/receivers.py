"""What qa listens to. Connected in QaConfig.ready()."""
