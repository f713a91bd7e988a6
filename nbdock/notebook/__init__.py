"""nbdock in Jupyter: ``%load_ext nbdock`` registers the magics.

    %%dockerfile [-t TAG] [--context DIR] [--build-arg K=V] [--target S] [--no-cache] [--name VAR]
    %container_run [docker run options] IMAGE [COMMAND...]
    %%container_run [options] [--lang python|sh] [--in NAME...] [--out NAME...] IMAGE
    %containers [-a] [-f KEY=VALUE]
    %images [REPOSITORY[:TAG]]

Every output has a deterministic ``text/plain`` beside its HTML or widget view, so notebooks run
the same under JupyterLab, nbclient, nbconvert and nbval.
"""

from __future__ import annotations

from typing import Any

from nbdock.notebook.build_progress import BuildProgress
from nbdock.notebook.layer_stack import LayerStack, steps_from_events
from nbdock.notebook.magics import NbdockMagics
from nbdock.notebook.status import ContainerStatus

__all__ = [
    "BuildProgress", "ContainerStatus", "LayerStack", "NbdockMagics", "load_ipython_extension",
    "steps_from_events", "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext nbdock`` (or ``nbdock.notebook``)."""
    ipython.register_magics(NbdockMagics(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext``: stop widget threads and remove the magics."""
    magics = ipython.magics_manager.registry.pop(NbdockMagics.__name__, None)
    if not isinstance(magics, NbdockMagics):
        return
    magics.release()
    registry = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        for name in list(registry[kind]):
            if getattr(registry[kind][name], "__self__", None) is magics:
                del registry[kind][name]
