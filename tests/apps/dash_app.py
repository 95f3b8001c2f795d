"""A Dash app for the browser tests: a button whose callback counts its clicks."""

from dash import Dash, Input, Output, html

app = Dash(__name__)
app.layout = html.Div(
    [
        html.H1("Hello dash"),
        html.Button("Add one", id="add", n_clicks=0),
        html.P("clicks: 0", id="clicks"),
    ]
)


@app.callback(Output("clicks", "children"), Input("add", "n_clicks"))
def count(n_clicks: int) -> str:
    """The text the page shows once the callback round trip completes."""
    return f"clicks: {n_clicks}"


if __name__ == "__main__":
    app.run()
