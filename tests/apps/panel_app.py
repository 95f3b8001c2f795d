"""A Panel app for the browser tests: a button that counts its clicks."""

import panel as pn

clicks = pn.pane.Markdown("panel clicks: 0")  # type: ignore[no-untyped-call]  # untyped
button = pn.widgets.Button(name="Add one")  # type: ignore[no-untyped-call]  # untyped


def add(event: object) -> None:
    """Show the new count (sent to the page over Bokeh's WebSocket)."""
    clicks.object = f"panel clicks: {button.clicks}"


button.on_click(add)
pn.Column("# Hello panel", button, clicks).servable()
