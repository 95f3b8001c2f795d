"""A Bokeh app for the tests: one button."""

from bokeh.io import curdoc
from bokeh.models import Button

curdoc().add_root(Button(label="Hello bokeh"))
