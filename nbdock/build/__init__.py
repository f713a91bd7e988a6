"""The builder: Dockerfile + context → image, with Docker's cache, explained step by step.

    Builder(store, state_dir).build(BuildOptions(context=…, tags=…), on_event) -> BuildResult
    history(image) -> [HistoryRow]                      for ``nbdock history``
    events: BuildStarted, StepStarted, StepCacheMiss, StepOutput, StepFinished, BuildFinished…

Imports ``dockerfile``, ``image`` and ``runtime`` of nbdock (never engine/client/cli).
"""

from nbdock.build.builder import Builder, BuildResult
from nbdock.build.events import (
    BuildFinished,
    BuildStarted,
    BuildWarning,
    ContextLoaded,
    Event,
    StepCacheMiss,
    StepFinished,
    StepOutput,
    StepStarted,
    event_from_json,
)
from nbdock.build.session import BuildOptions

__all__ = [
    "BuildFinished",
    "BuildOptions",
    "BuildResult",
    "BuildStarted",
    "BuildWarning",
    "Builder",
    "ContextLoaded",
    "Event",
    "StepCacheMiss",
    "StepFinished",
    "StepOutput",
    "StepStarted",
    "event_from_json",
]
