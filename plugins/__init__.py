"""Built-in DashFleet plugins, installed as `dashfleet_plugins`: each module is one plugin,
registered exactly like a third-party one."""
