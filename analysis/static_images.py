"""Figures as PNG through kaleido's headless Chrome, for the report's files and the notebook's outputs.

On a loaded machine Chrome may run kaleido's script before its page has loaded ("kaleido_scopes is not
defined"): that render is tried again, up to `attempts` times in all; any other error, or the last
failure, is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import kaleido
import plotly.io as pio
from plotly.io._base_renderers import PngRenderer  # the class plotly's "png" renderer is: no public path

PAGE_NOT_READY = "kaleido_scopes is not defined"


def retried(render: Callable, name: str, attempts: int = 3):
    """`render()`, again where kaleido's page was not ready."""
    for attempt in range(1, attempts + 1):
        try:
            return render()
        except Exception as exc:  # kaleido's JavascriptError: its module path is private
            if PAGE_NOT_READY not in str(exc) or attempt == attempts:
                raise
            print(f"{name}: kaleido's page was not ready (attempt {attempt} of {attempts}), again")


@contextmanager
def one_browser() -> Iterator[None]:
    """One kaleido Chrome for every render inside (else each starts its own): 7 figures in 7.8 s
    against 15.1 s on 2 cores."""
    kaleido.start_sync_server(silence_warnings=True)
    try:
        yield
    finally:
        kaleido.stop_sync_server(silence_warnings=True)


def write_png(fig, path: Path, attempts: int = 3) -> None:
    """The figure as a PNG file."""
    retried(lambda: fig.write_image(path, scale=1), f"report: {Path(path).name}", attempts)


class RetryingPngRenderer(PngRenderer):
    """plotly's PNG renderer, its render tried again where kaleido's page was not ready."""

    def to_mimebundle(self, fig_dict):
        return retried(lambda: super(RetryingPngRenderer, self).to_mimebundle(fig_dict), "png")


def use_in_notebook(width: int = 1000, height: int = 620) -> None:
    """Figures interactive in JupyterLab and a PNG of `width` x `height` for every other viewer."""
    pio.renderers["png"] = RetryingPngRenderer(width=width, height=height)
    pio.renderers.default = "plotly_mimetype+png"
