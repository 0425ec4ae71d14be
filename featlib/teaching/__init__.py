"""Teaching views: the layer sweep, the channel explorer and Grad-CAM."""

from featlib._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "featlib._text": ["percent"],
        "featlib.teaching.channels": [
            "MAP_BUDGET",
            "ChannelHits",
            "LayerScan",
            "Maximized",
            "channel_hits",
            "maximize_channel",
            "receptive_field_box",
            "scan_layer",
            "top_activations",
        ],
        "featlib.teaching.saliency": ["SCORES", "GradCam", "gradcam"],
        "featlib.teaching.sweep": [
            "SAME",
            "Sweep",
            "describe_sweep",
            "islands",
            "layer_sweep",
            "sweep_input_size",
            "sweep_problem",
            "sweep_scores",
        ],
    },
)
