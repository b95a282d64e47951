"""What sessions_app listens to. Connected in SessionsAppConfig.ready()."""
