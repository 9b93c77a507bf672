"""Built-in exporters (`register_exporters`): the formats `dashfleet watch --export` and `dashfleet export` write."""
