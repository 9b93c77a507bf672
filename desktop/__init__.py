"""The desktop host: `dashfleet desktop`, this machine's live view and self-service actions in a
Tkinter window, on the same engine, plugins and config as the other hosts.

Modules: `view` (what to show, pure and tested without a display), `i18n` (the strings in
`strings.json`), `feed` (the engine's scheduler collects; results reach the Tk thread through a
queue), `export` (CSV), `selfservice` (actions through the core's ActionService), `window` (the
Tk widgets, the only module that imports tkinter), `cli` (the command).
"""
