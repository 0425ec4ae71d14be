"""Model: the backbone's facts, its layers, and (with ImageNet weights) what it predicts."""

import streamlit as st

from featlib.extraction import device_name
from featlib.models import imagenet
from ui import data, resources
from ui.sidebar import sidebar

choices = sidebar()
bb = resources.backbone(choices.model)
layers = resources.layers(bb)

st.title("Model")
st.caption(
    "The network the other pages look into: its layers in order, what each outputs, and how "
    "much of the image one output position sees (receptive field)."
)
facts = st.columns(5)
facts[0].metric("Backbone", bb.name)
facts[1].metric("Family", bb.family)
facts[2].metric("Input", "×".join(str(s) for s in bb.input_size))
facts[3].metric("Parameters", f"{bb.model.count_params():,}")
facts[4].metric("Layers", len(layers))
st.markdown(
    f"**Weights:** {bb.weights_label} · **preprocessing:** {bb.preprocessing} · "
    f"**blocks:** {', '.join(i.name for i in resources.block_outputs(bb))}"
)
run = resources.run_settings(bb)
xla = ", compiled by XLA" if run.jit_compile else ""
how = (
    "the settings measured fastest for this backbone on this machine"
    if run.measured
    else "this machine's defaults; the fastest settings are measured once a set is large "
    "enough to repay the timing"
)
st.caption(
    f"Runs here on {device_name()} in {run.precision}, {run.batch_size} images per pass{xla}: "
    f"{how}."
)

st.subheader("Layers")
st.dataframe(
    {
        "name": [i.name for i in layers],
        "type": [i.type for i in layers],
        "output shape": ["×".join(str(s) for s in i.output_shape) for i in layers],
        "parameters": [i.params for i in layers],
        "receptive field (px)": [i.receptive_field for i in layers],
        "stride": [i.stride for i in layers],
        "block": [i.block for i in layers],
    },
    column_config={"parameters": st.column_config.NumberColumn(format="localized")},
    hide_index=True,
    height=min(700, 35 * (len(layers) + 1) + 3),
)

st.subheader("ImageNet predictions")
problem = imagenet.unavailable_for(bb)
if problem is not None:
    st.info(f"No predictions here: {problem}")
    st.stop()
images = data.required(choices.images)
top5 = resources.imagenet_top_k(bb.name, images, choices.resize_mode, 5)
st.caption("The five most probable of ImageNet's 1,000 classes, by the backbone's own classifier.")
rows = {"image": [r.name for r in images.images.ok]}
for rank in range(5):
    rows[f"#{rank + 1}"] = [f"{top[rank][0]} ({top[rank][1]:.0%})" for top in top5]
st.dataframe(rows, hide_index=True)
