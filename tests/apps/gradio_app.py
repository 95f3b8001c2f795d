"""A Gradio app for the browser tests: a button that greets."""

import gradio as gr


def greet(name: str) -> str:
    """The greeting shown once the event round trip completes."""
    return f"Hello {name} from gradio"


with gr.Blocks() as demo:
    name = gr.Textbox(label="Name", value="ana")
    out = gr.Textbox(label="Greeting")
    gr.Button("Greet").click(greet, inputs=name, outputs=out)

demo.launch()
