"""A Bokeh app for the tests: one button."""

from bokeh.io import curdoc
from bokeh.models import Button  # type: ignore[attr-defined]  # re-exported lazily

curdoc().add_root(Button(label="Hello bokeh"))
