"""How errors reach the notebook: user mistakes as ``UsageError``, engine errors as one red line.

A traceback into nbdock's internals helps nobody who typed ``--memory 32x`` or named an image that
does not exist. ``InvalidArgument`` is the user's own input, so it becomes IPython's
``UsageError`` (printed without a traceback). Any other ``NbdockError`` keeps its class (so
``except ImageNotFound`` around ``run_line_magic`` still works) but gains ``_render_traceback_``,
the hook IPython uses to render an exception, so the cell fails with a short, clear message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from IPython.core.error import UsageError

from nbdock.errors import InvalidArgument, NbdockError
from nbdock.notebook._display import error_lines


@contextmanager
def user_facing_errors() -> Iterator[None]:
    try:
        yield
    except InvalidArgument as error:
        raise UsageError(str(error)) from None
    except NbdockError as error:
        if not hasattr(error, "_render_traceback_"):  # a renderer may have set a shorter one
            error._render_traceback_ = lambda shown=error: error_lines(shown)  # type: ignore[attr-defined]
        raise
