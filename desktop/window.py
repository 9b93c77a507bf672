"""The Tk window: widgets only. What to show comes from `view`, the data from `feed`.

Every method here runs on the Tk thread: `poll()` (re-armed with `after()`) takes the engine's
results from the feed's queue; actions and the agent's status are read on the engine's scheduler.
"""

from __future__ import annotations

import logging
import time
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, ttk
from typing import Any, Callable

from dashfleet_core.exporting import export_record

from . import selfservice, view
from .export import CsvExport, ExportError
from .feed import Feed, Message
from .i18n import LANGUAGES, NAMES, Translator

log = logging.getLogger(__name__)

# When the Tk thread looks at the feed's queue (each look costs a Tcl callback, so as few as will
# do): just after the next snapshot is due (SETTLE_MS after the last one arrived, plus the interval),
# then every RETRY_MS until it is there (a slow cycle) or while an action runs.
# At most MAX_WAIT_MS between two looks, so a SIGTERM (seen by poll()) closes the window promptly.
SETTLE_MS, RETRY_MS, MAX_WAIT_MS = 30, 100, 2000
FONT = "DejaVu Sans"
CHART_W, CHART_H = 420, 130


class DesktopWindow:
    """The DashFleet desktop window on `root`, fed by `feed`. `close()` stops everything."""

    def __init__(self, root: tk.Tk, feed: Feed, *, settings: Any, pm: Any, language: str,
                 export_path: Path, exporter: Callable[[Any], Any] | None, status_path: Path | None,
                 history_minutes: float, on_closed: Callable[[], None] | None = None) -> None:
        self.root = root
        self.feed = feed
        self._due = time.monotonic()   # when the next snapshot is expected (monotonic seconds)
        self.settings = settings
        self.pm = pm
        self.t = Translator(language)
        self.history = view.History(span=history_minutes * 60)
        self.history_minutes = history_minutes
        self.tracker = view.StatusTracker(settings.health)
        self.exporter = CsvExport(exporter) if exporter is not None else None
        self.status_path = status_path
        self.on_closed = on_closed
        self.closed = False
        self.stop_requested = False   # set from a signal handler; poll() closes the window
        self.last: tuple[Any, Any, str] | None = None   # (report, health, tracked status)
        self.agent_doc: dict | None = None
        self.agent_error: str | None = None
        self._agent_recheck = 0.0   # when the agent's lines may change without news (unix time)
        self.snapshots = 0
        self._translated: list[tuple[Any, str, str]] = []   # (widget, option, key)
        self._message: dict[str, tuple[str, dict]] = {}     # area -> (key, values) shown there
        self._shown: dict[str, dict] = {}                     # widget -> options last configured
        self._pending: dict[str, Any] | None = None         # the action awaiting confirmation
        self.actions = selfservice.available(settings, pm)

        root.title(self.t("title"))
        root.protocol("WM_DELETE_WINDOW", self.close)
        root.minsize(760, 560)
        style = ttk.Style(root)
        if style.theme_use() == "default":  # X11's bare theme; Windows and macOS keep their native one
            style.theme_use("clam")
        style.configure("Value.TLabel", font=(FONT, 16, "bold"))
        style.configure("Head.TLabel", font=(FONT, 11, "bold"))
        self.background = style.lookup("TFrame", "background") or root.cget("bg")
        self._build(export_path)
        self.retranslate()
        root.update_idletasks()  # lets the theme change settle before anything can destroy the root
        # one Tcl command for every poll: `after(ms, func)` would create and delete one per call
        self._poll_command = root.register(self.poll)
        self._after = root.tk.call("after", RETRY_MS, self._poll_command)

    # --- building ---------------------------------------------------------------------------------

    def _label(self, parent: Any, key: str, **kw: Any) -> ttk.Label:
        label = ttk.Label(parent, **kw)
        self._translated.append((label, "text", key))
        return label

    def _build(self, export_path: Path) -> None:
        outer = ttk.Frame(self.root, padding=10)
        outer.pack(fill="both", expand=True)
        top = ttk.Frame(outer)
        top.pack(fill="x")
        self.host_label = ttk.Label(top, text="", style="Head.TLabel")
        self.host_label.pack(side="left")
        self.language = tk.StringVar(value=self.t.language)
        self.language_menu = ttk.OptionMenu(top, self.language, self.t.language, *LANGUAGES,
                                            command=lambda _v: self.set_language(self.language.get()))
        self.language_menu.pack(side="right")
        self._label(top, "lang.label").pack(side="right", padx=6)

        body = ttk.Frame(outer)
        body.pack(fill="both", expand=True, pady=(8, 0))
        left = ttk.Frame(body)
        left.pack(side="left", fill="both", expand=True)
        right = ttk.Frame(body)
        right.pack(side="left", fill="both", expand=True, padx=(12, 0))

        # live values
        values = ttk.Frame(left)
        values.pack(fill="x")
        self.value_labels: dict[str, ttk.Label] = {}
        for col, key in enumerate(("cpu", "ram", "disk", "uptime")):
            self._label(values, f"metric.{key}").grid(row=0, column=col, sticky="w", padx=(0, 18))
            self.value_labels[key] = ttk.Label(values, text="–", style="Value.TLabel")
            self.value_labels[key].grid(row=1, column=col, sticky="w", padx=(0, 18))

        # health: score, status (coloured), findings
        health = ttk.Frame(left)
        health.pack(fill="x", pady=(10, 0))
        self._label(health, "live.health", style="Head.TLabel").pack(side="left")
        self.score_label = ttk.Label(health, text="–", style="Value.TLabel")
        self.score_label.pack(side="left", padx=8)
        self.status_label = tk.Label(health, text="", fg="white", bg=view.STATUS_COLOURS["unknown"],
                                     font=(FONT, 11, "bold"), padx=10, pady=2)
        self.status_label.pack(side="left")
        self.updated_label = ttk.Label(health, text="")
        self.updated_label.pack(side="right")
        self._label(left, "live.findings", style="Head.TLabel").pack(anchor="w", pady=(8, 0))
        self.findings_label = tk.Label(left, text="", justify="left", anchor="w", wraplength=CHART_W,
                                       font=(FONT, 10), bg=self.background)
        self.findings_label.pack(fill="x")

        # history chart
        self.chart_title = ttk.Label(left, text="", style="Head.TLabel")
        self.chart_title.pack(anchor="w", pady=(8, 0))
        self.chart = tk.Canvas(left, width=CHART_W, height=CHART_H, bg="white", highlightthickness=1,
                               highlightbackground="#bbbbbb")
        self.chart.pack(anchor="w")
        self._build_chart()
        legend = ttk.Frame(left)
        legend.pack(anchor="w")
        for key, _metric, colour in view.SERIES:
            tk.Label(legend, text="■", fg=colour, bg=self.background).pack(side="left")
            self._label(legend, f"metric.{key}").pack(side="left", padx=(0, 10))

        # CSV export
        self._label(right, "export.heading", style="Head.TLabel").pack(anchor="w")
        row = ttk.Frame(right)
        row.pack(fill="x")
        self._label(row, "export.file").pack(side="left")
        self.export_path = tk.StringVar(value=str(export_path))
        self.export_entry = ttk.Entry(row, textvariable=self.export_path, width=34)
        self.export_entry.pack(side="left", fill="x", expand=True, padx=4)
        self.choose_button = ttk.Button(row, command=self.choose_export_path)
        self._translated.append((self.choose_button, "text", "export.choose"))
        self.choose_button.pack(side="left")
        self.export_button = ttk.Button(right, command=self.export_csv)
        self._translated.append((self.export_button, "text", "export.run"))
        self.export_button.pack(anchor="w", pady=4)
        self.export_result = ttk.Label(right, text="", wraplength=320)
        self.export_result.pack(anchor="w")

        # actions
        self._label(right, "actions.heading", style="Head.TLabel").pack(anchor="w", pady=(12, 0))
        self.action_name = tk.StringVar(value=self.actions[0].name if self.actions else "")
        self.params_frame = ttk.Frame(right)
        self.param_vars: dict[str, tk.StringVar] = {}
        self.dry_run = tk.BooleanVar(value=True)
        if self.actions:
            row = ttk.Frame(right)
            row.pack(fill="x")
            self._label(row, "actions.action").pack(side="left")
            self.action_menu = ttk.OptionMenu(row, self.action_name, self.action_name.get(),
                                              *[a.name for a in self.actions],
                                              command=lambda _v: self._show_params())
            self.action_menu.pack(side="left", padx=4)
            self.action_description = ttk.Label(right, text="", wraplength=320)
            self.action_description.pack(anchor="w")
            self.params_frame.pack(fill="x")
            self.dry_run_check = ttk.Checkbutton(right, variable=self.dry_run)
            self._translated.append((self.dry_run_check, "text", "actions.dry_run"))
            self.dry_run_check.pack(anchor="w")
            self.run_button = ttk.Button(right, command=self.ask_action)
            self._translated.append((self.run_button, "text", "actions.run"))
            self.run_button.pack(anchor="w", pady=4)
            self._show_params()
        else:
            self._label(right, "actions.none").pack(anchor="w")
        self.confirm_frame = ttk.Frame(right)
        self.confirm_label = ttk.Label(self.confirm_frame, text="", wraplength=320)
        self.confirm_label.pack(anchor="w")
        self.confirm_button = ttk.Button(self.confirm_frame, command=self.confirm_action)
        self._translated.append((self.confirm_button, "text", "actions.confirm"))
        self.confirm_button.pack(side="left")
        self.cancel_button = ttk.Button(self.confirm_frame, command=self.cancel_action)
        self._translated.append((self.cancel_button, "text", "actions.cancel"))
        self.cancel_button.pack(side="left", padx=4)
        self.action_result = ttk.Label(right, text="", wraplength=320)
        self.action_result.pack(anchor="w")

        # the local agent
        self._label(right, "agent.heading", style="Head.TLabel").pack(anchor="w", pady=(12, 0))
        self.agent_label = ttk.Label(right, text="", justify="left", wraplength=320)
        self.agent_label.pack(anchor="w")

    def _show_params(self) -> None:
        for child in self.params_frame.winfo_children():
            child.destroy()
        self.param_vars = {}
        entry = self._entry(self.action_name.get())
        if entry is None:
            return
        self.action_description.configure(text=entry.description)
        for row, (name, spec) in enumerate(selfservice.fields(entry).items()):
            ttk.Label(self.params_frame, text=name).grid(row=row, column=0, sticky="w")
            var = tk.StringVar(value="" if spec.get("default") is None else _as_text(spec["default"]))
            ttk.Entry(self.params_frame, textvariable=var, width=24).grid(row=row, column=1, sticky="w", padx=4)
            self.param_vars[name] = var

    def _entry(self, name: str):
        return next((a for a in self.actions if a.name == name), None)

    # --- language ---------------------------------------------------------------------------------

    def set_language(self, language: str) -> None:
        self.t = Translator(language)
        if self.language.get() != language:
            self.language.set(language)
        self.retranslate()

    def retranslate(self) -> None:
        """Every label in the current language, the data shown re-rendered in it."""
        self.root.title(self.t("title"))
        for widget, option, key in self._translated:
            widget.configure(**{option: self.t(key)})
        self.chart_title.configure(text=self.t("chart.title", minutes=_minutes(self.history_minutes)))
        for area, (key, values) in self._message.items():
            self._area(area).configure(text=self.t(key, **values) if key else values.get("text", ""))
        self._render_reading()
        self._render_agent()

    # --- the feed ---------------------------------------------------------------------------------

    def poll(self) -> None:
        """Take what the engine produced since the last poll, and look again when the next
        snapshot is due (RETRY_MS later while waiting for it or for an action's result)."""
        if self.closed:
            return
        if self.stop_requested:
            self.close()
            return
        for message in self.feed.drain():
            if message.kind == "snapshot":
                self._due = message.at + self.feed.interval
            self._take(message)
        wait = (self._due - time.monotonic()) * 1000 + SETTLE_MS
        if wait < SETTLE_MS or self._pending is not None and self._pending.get("running"):
            wait = RETRY_MS
        self._after_ms = int(min(wait, MAX_WAIT_MS))
        self._after = self.root.tk.call("after", self._after_ms, self._poll_command)

    def _take(self, message: Message) -> None:
        if message.kind == "snapshot":
            if message.error is not None:
                self.updated_label.configure(text=f"{type(message.error).__name__}: {message.error}")
                return
            report, health = message.value
            status = self.tracker.update(report, health)
            self.last = (report, health, status)
            self.snapshots += 1
            # the export record is built when an export asks for it, not for every snapshot
            self.history.add(report.collected_at.timestamp(), report.metrics, (report, health))
            self._render_reading()
            self._draw_chart()
            if time.time() >= self._agent_recheck:  # a running agent falling silent turns stale
                self._render_agent()
        elif message.kind == "agent":
            self.agent_doc = message.value
            self.agent_error = f"{message.error}" if message.error is not None else None
            self._render_agent()
        elif message.kind == "action":
            self._action_done(message)

    def _set(self, widget: Any, **options: Any) -> None:
        """Configure `widget` only when something shown changes: each configure makes Tk redraw."""
        if self._shown.get(str(widget)) != options:
            self._shown[str(widget)] = options
            widget.configure(**options)

    def _render_reading(self) -> None:
        if self.last is None:
            self._set(self.updated_label, text=self.t("live.waiting"))
            return
        report, health, status = self.last
        shown = view.reading(report, health, status, self.t, self.settings.health.thresholds)
        self._set(self.host_label, text=shown.hostname)
        for key, label in self.value_labels.items():
            self._set(label, text=shown.values[key])
        self._set(self.score_label, text=shown.score)
        self._set(self.status_label, text=shown.status_text, bg=shown.colour)
        self._set(self.updated_label, text=shown.updated)
        if shown.findings:
            text = "\n".join(f"• {msg}" for _sev, msg in shown.findings)
            colour = view.STATUS_COLOURS["critical" if any(s == "critical" for s, _ in shown.findings) else "warn"]
        else:
            text, colour = self.t("live.none"), view.STATUS_COLOURS["ok"]
        self._set(self.findings_label, text=text, fg=colour)

    def _build_chart(self) -> None:
        """The grid once; one line item per series, moved by `_draw_chart` (cheaper than redrawing)."""
        c = self.chart
        for pct in (0, 50, 100):
            y = 4 + (CHART_H - 8) * (1 - pct / 100)
            c.create_line(4, y, CHART_W - 4, y, fill="#e0e0e0")
            c.create_text(CHART_W - 6, y, text=f"{pct}", anchor="e" if pct else "se", fill="#9e9e9e",
                          font=(FONT, 7))
        self._lines = {key: c.create_line(0, 0, 0, 0, fill=colour, width=2, tags=(key,), state="hidden")
                       for key, _metric, colour in view.SERIES}
        self._hidden = set(self._lines)   # series with no point yet

    def _draw_chart(self) -> None:
        lines = view.chart_lines(self.history.samples, self.history.span, CHART_W, CHART_H)
        for key, item in self._lines.items():
            points = lines[key]
            if len(points) == 2:  # one sample: a dot
                points = [points[0] - 1, points[1], points[0] + 1, points[1]]
            if points:
                self.chart.coords(item, *points)
                if key in self._hidden:
                    self._hidden.discard(key)
                    self.chart.itemconfigure(item, state="normal")

    def _render_agent(self) -> None:
        now = time.time()
        # Looked at again with the snapshots: every refresh once stale (its age shows), else when
        # it would turn stale, and once a minute (a time shown with the date after midnight).
        self._agent_recheck = now + 60
        if self.agent_error:
            text = self.t("agent.unreadable", error=self.agent_error)
        elif self.agent_doc is None:
            text = self.t("agent.none", path=self.status_path) if self.status_path else ""
        else:
            text = "\n".join(f"{label}: {value}" for label, value in view.agent_rows(self.agent_doc, self.t, now))
            stale = view.stale_at(self.agent_doc)
            if stale is not None:
                self._agent_recheck = min(self._agent_recheck, max(stale, now))
        self._set(self.agent_label, text=text)

    # --- export -----------------------------------------------------------------------------------

    def choose_export_path(self) -> None:
        current = Path(self.export_path.get() or ".").expanduser()
        chosen = filedialog.asksaveasfilename(
            parent=self.root, initialdir=str(current.parent), initialfile=current.name,
            defaultextension=".csv", filetypes=[("CSV", "*.csv"), ("*", "*")], confirmoverwrite=False)
        if chosen:
            self.export_path.set(chosen)

    def export_csv(self) -> None:
        """Append the snapshots held (the chart's span) to the chosen file; the file write is
        small (at most a few hundred rows) and done here, so its result shows at once."""
        path = self.export_path.get().strip()
        if self.exporter is None:
            self._say("export", None, text="csv exporter is not enabled ([plugins] disabled/enabled)")
            return
        if not path:
            return
        try:
            count = self.exporter.write(path, [export_record(report, health)
                                               for report, health in self.history.export_records()])
        except ExportError as exc:
            self._say("export", "export.failed", path=path, error=str(exc))
            return
        resolved = str(Path(path).expanduser().resolve())
        if count:
            self._say("export", "export.done", count=count, path=resolved)
        else:
            self._say("export", "export.nothing", path=resolved)

    # --- actions ----------------------------------------------------------------------------------

    def ask_action(self) -> None:
        """First step of a run: check the parameters and ask for confirmation."""
        entry = self._entry(self.action_name.get())
        if entry is None or self._pending is not None and self._pending.get("running"):
            return
        try:
            params = selfservice.parse_params(entry, {k: v.get() for k, v in self.param_vars.items()}, self.t)
        except selfservice.ParamError as exc:
            self._say("action", None, text=str(exc))
            return
        dry = bool(self.dry_run.get())
        self._pending = {"name": entry.name, "params": params, "dry_run": dry}
        self.confirm_label.configure(text=self.t("actions.ask_dry" if dry else "actions.ask", action=entry.name))
        self.confirm_frame.pack(anchor="w", before=self.action_result, pady=4)
        self._say("action", None, text="")

    def confirm_action(self) -> None:
        pending = self._pending
        if pending is None or pending.get("running"):
            return
        pending["running"] = True
        self.confirm_frame.pack_forget()
        self.run_button.state(["disabled"])
        self._say("action", "actions.running", action=pending["name"])
        settings, pm = self.settings, self.pm
        self.feed.submit("action", lambda: selfservice.run(settings, pm, pending["name"], pending["params"],
                                                           pending["dry_run"]))

    def cancel_action(self) -> None:
        if self._pending is not None and not self._pending.get("running"):
            self._pending = None
            self.confirm_frame.pack_forget()
            self._say("action", "actions.cancelled")

    def _action_done(self, message: Message) -> None:
        self._pending = None
        self.run_button.state(["!disabled"])
        if message.error is not None:
            self._say("action", None, text=f"{type(message.error).__name__}: {message.error}")
            return
        outcome: selfservice.Outcome = message.value
        if outcome.refused:
            self._say("action", "actions.refused", message=outcome.summary)
            return
        head = self.t("actions.ok" if outcome.ok else "actions.failed", action=outcome.action)
        dry = f" {self.t('actions.dry')}" if outcome.dry_run else ""
        self._say("action", None, text=f"{head}{dry}\n{outcome.summary}")

    # --- messages ---------------------------------------------------------------------------------

    def _area(self, area: str) -> ttk.Label:
        return self.export_result if area == "export" else self.action_result

    def _say(self, area: str, key: str | None, **values: Any) -> None:
        """Show a message in an area, kept so a language switch re-renders it (a text given as-is,
        such as an action's own summary, stays as it is)."""
        self._message[area] = (key or "", values)
        self._area(area).configure(text=self.t(key, **values) if key else values.get("text", ""))

    # --- closing ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the window, then stop the engine (waiting for the job in progress)."""
        if self.closed:
            return
        self.closed = True
        started = time.monotonic()
        try:
            self.root.tk.call("after", "cancel", self._after)
            self._release_variables()
            self.root.destroy()
        except tk.TclError:  # already destroyed (the Tk loop ended first)
            pass
        finally:
            self.feed.stop()
            log.info("desktop window closed, engine stopped in %.1f s", time.monotonic() - started)
            if self.on_closed is not None:
                self.on_closed()


    def _release_variables(self) -> None:
        """Unset the Tk variables now, on the Tk thread. Left to the garbage collector, their
        `__del__` could run on one of the engine's threads, which must never touch Tk."""
        for var in (self.language, self.export_path, self.action_name, self.dry_run, *self.param_vars.values()):
            try:
                var.__del__()
            except tk.TclError:
                pass
            var._tk = None  # its __del__ does nothing from now on


def _minutes(value: float) -> str:
    return f"{value:g}"


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
