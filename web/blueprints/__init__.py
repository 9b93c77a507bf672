"""One module per area of the web host; each exposes `bp`, a Flask Blueprint. The app factory
registers every module here that has one, so adding an area is adding a file."""
