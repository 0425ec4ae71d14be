"""Feature maps: what one layer computes for one image, channel by channel, and how the
strongest response changes from block to block."""

import streamlit as st

import featlib
from featlib import render
from featlib.analysis.maps import channel_stats, top_channels
from ui import data, resources, state
from ui.explain import explain
from ui.sidebar import sidebar
from ui.state import url_widget

COMPARE = {"none": "nothing", "image": "another image", "weights": "other weights"}


def image_ui(images, key: str, label: str, default: int = 0):
    """Pick one usable image of the set by name; returns its record."""
    names = [r.name for r in images.ok]
    name = url_widget(
        st.selectbox, label, key=key, default=names[min(default, len(names) - 1)], options=names,
        help="The image to run through the network. Type to search.",
    )  # fmt: skip
    return images.ok[names.index(name)]


def channels_ui(n_channels: int) -> tuple[list[int] | None, int, str, bool]:
    """Which channels to draw and how; returns (channel range or None for the strongest,
    how many, colour scale, shared scale)."""
    cols = st.columns([1.2, 1.6, 1, 1, 1])
    mode = url_widget(
        cols[0].radio, "Channels", key=state.CHANNELS, default="strongest",
        options=["strongest", "range"], horizontal=True,
        help="The channels with the highest mean activation, or a range of channel numbers.",
    )  # fmt: skip
    most = max(2, min(64, n_channels))  # a slider needs two values at least
    count = url_widget(
        cols[1].slider, "How many", key=state.COUNT, default=min(16, n_channels), parse=int,
        valid=range(1, most + 1), min_value=1, max_value=most,
        help="Number of channels in the grid.",
    )  # fmt: skip
    first = url_widget(
        cols[2].number_input, "First channel", key=state.FIRST, default=0, parse=int,
        valid=range(n_channels), min_value=0, max_value=n_channels - 1, step=count,
        disabled=mode != "range", help=f"Channels are numbered 0 to {n_channels - 1}.",
    )  # fmt: skip
    colorscale = url_widget(
        cols[3].selectbox, "Colours", key=state.COLORSCALE, default="viridis",
        options=list(render.COLORSCALES), help="The colour scale of the maps.",
    )  # fmt: skip
    shared = url_widget(
        cols[4].toggle, "One scale", key=state.SHARED_SCALE, default=False,
        parse=state.flag, valid=(True, False),
        help="On: one colour scale for all channels, so strengths compare. Off: each channel "
        "uses its own range, so weak patterns show.",
    )  # fmt: skip
    chosen = list(range(first, min(first + count, n_channels))) if mode == "range" else None
    return chosen, count, colorscale, shared


def compare_ui(model) -> str:
    """What to show next to this image: nothing, another image, or other weights."""
    options = list(COMPARE) if model.file is None else ["none", "image"]
    return url_widget(
        st.radio, "Compare with", key=state.COMPARE, default="none", options=options,
        format_func=COMPARE.get, horizontal=True,
        help="Another image through the same network, or this image through the same network "
        "with other weights (random if these are trained, trained if these are random).",
    )  # fmt: skip


def other_ui(compare: str, model, images, bb, record):
    """The second case to compare, ``(backbone, record)``, or None."""
    if compare == "image":
        return bb, image_ui(images, state.OTHER_IMAGE, "Other image", default=1)
    if compare == "weights":
        weights = "random" if model.weights != "random" else "auto"
        try:
            return resources.backbone(resources.ModelChoice(model.backbone, weights)), record
        except featlib.FeatlibError as exc:
            st.warning(f"Cannot load {weights} weights to compare with: {exc}")
    return None


def grid(maps, channels, colorscale, shared, key: str, width: int = 680) -> None:
    """The channel grid as a plotly heatmap (hover shows values)."""
    st.plotly_chart(
        render.channel_grid(maps, channels, colorscale, shared, width=width),
        key=key,
        config={"displayModeBar": False},
    )


def strongest_strip(maps: dict, colorscale: str) -> None:
    """One picture per block: its strongest channel, fine to coarse."""
    pictures, captions = [], []
    for name, m in maps.items():
        channel = int(top_channels(m, 1)[0])
        pictures.append(render.map_image(m[..., channel], size=150, colorscale=colorscale))
        captions.append(f"{name} · #{channel} · {m.shape[0]}×{m.shape[1]}")
    st.image(pictures, caption=captions, width=150)


choices = sidebar()
bb = resources.backbone(choices.model)
layer = {i.name: i for i in resources.layers(bb)}[choices.layer]

st.title("Feature maps")
st.caption(
    "Each channel of a layer is a map of where one learned pattern was found in the image. "
    "Early layers find edges and colours; later ones, textures and parts of objects."
)
explain("feature_maps")
images = data.required(choices.images)
top = st.columns([2, 3])
with top[0]:
    record = image_ui(images.images, state.IMAGE, "Image")
with top[1]:
    other = other_ui(compare_ui(choices.model), choices.model, images.images, bb, record)

if not layer.spatial:
    st.info(
        f"{layer.name} gives a vector of {layer.channels} values, not a map: pick a convolution "
        "or pooling layer in the sidebar to see maps."
    )
    st.stop()

image, maps = resources.feature_maps(bb, [layer.name], images, record, choices.resize_mode)
m = maps[layer.name]
chosen, count, colorscale, shared = channels_ui(m.shape[-1])
channels = chosen if chosen is not None else [int(c) for c in top_channels(m, count)]
left, right = st.columns([1, 2.6])
with right:
    grid(m, channels, colorscale, shared, key="grid")
with left:
    h, w = bb.input_size
    st.image(
        image, caption=f"What the network receives: {w}×{h}, {choices.resize_mode}", width="stretch"
    )
    channel = url_widget(
        st.selectbox, "Overlay channel", key=state.CHANNEL, default=channels[0], parse=int,
        options=channels, help="One channel of the grid, enlarged and laid over the image.",
    )  # fmt: skip
    st.image(
        render.overlay(image, m[..., channel], colorscale="magma"),
        caption=f"#{channel} over the image",
        width="stretch",
    )

stats = channel_stats(m)
with st.expander(f"Statistics of the {len(channels)} channels shown"):
    st.dataframe(
        {
            "channel": channels,
            "mean": stats.mean[channels],
            "max": stats.max[channels],
            "active": stats.active[channels] * 100,
        },
        column_config={
            "active": st.column_config.ProgressColumn(
                "active (% of positions > 0)", min_value=0, max_value=100, format="%.0f%%"
            )
        },
        hide_index=True,
    )

if other is not None:
    st.subheader("Side by side")
    st.caption("The same channels of the same layer, for the two cases.")
    two_images = other[1] != record
    for i, (column, (b, rec)) in enumerate(zip(st.columns(2), [(bb, record), other], strict=True)):
        with column:
            st.markdown(f"**{rec.name}** · {b.weights_label}")
            picture, side = resources.feature_maps(
                b, [layer.name], images, rec, choices.resize_mode
            )
            if two_images:
                st.image(picture, caption=rec.label, width=160)
            grid(side[layer.name], channels, colorscale, shared, key=f"grid_{i}", width=470)

st.subheader("Through the network")
st.caption(
    "The strongest channel of each block, from the first (fine: edges) to the last (coarse: parts)."
)
blocks = [info.name for info in resources.block_outputs(bb)]
for b, rec in [(bb, record)] + ([other] if other is not None else []):
    if other is not None:
        st.markdown(f"**{rec.name}** · {b.weights_label}")
    strongest_strip(
        resources.feature_maps(b, blocks, images, rec, choices.resize_mode)[1], colorscale
    )
