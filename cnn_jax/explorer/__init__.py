"""The explorer: one offline web page that shows how a conv layer's geometry decides shapes,
cost and accuracy (`python -m experiments.explore`).

`collect` gathers the data of a sweep folder, a run folder or a config; `views` the kernels,
feature maps and effective receptive fields of a trained checkpoint; `page` writes the HTML.
"""

from cnn_jax.explorer.collect import config_data, run_data, sweep_data
from cnn_jax.explorer.page import render_page, serve, write_page

__all__ = ["config_data", "render_page", "run_data", "serve", "sweep_data", "write_page"]
