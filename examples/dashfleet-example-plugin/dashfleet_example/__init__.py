"""An example third-party DashFleet plugin package (see README.md)."""
