"""The layer-stack widget, from step-event dicts as the builder emits them (no build needed)."""

from __future__ import annotations

from nbdock.notebook.layer_stack import (
    LayerStack,
    file_tree,
    result_text,
    stack_text,
    steps_from_events,
    wasted_bytes,
)

STEPS = [
    {"step": 1, "instruction": "FROM busybox", "line": 1, "cached": True, "seconds": 0.0,
     "size": None},
    {"step": 2, "instruction": "COPY data.bin app.py /app/", "line": 2, "cached": True,
     "seconds": 0.0, "size": 3000,
     "added": [{"path": "/app/data.bin", "size": 2000}, {"path": "/app/app.py", "size": 1000}]},
    {"step": 3, "instruction": "RUN rm /app/data.bin && echo v2 > /app/app.py", "line": 3,
     "cached": False, "reason": "files changed: app.py", "seconds": 1.25, "size": 10,
     "changed": [{"path": "/app/app.py", "size": 3}], "removed": ["/app/data.bin"]},
]


def test_wasted_bytes_counts_files_later_layers_overwrite_or_delete() -> None:
    assert wasted_bytes(STEPS) == 3000  # data.bin removed (2000) + app.py overwritten (1000)
    assert wasted_bytes(STEPS[:2]) == 0
    assert wasted_bytes([{"added": ["/etc/a"]}, {"removed": ["/etc"]}]) == 0  # sizes unknown


def test_file_tree_marks_added_changed_removed() -> None:
    assert file_tree(STEPS[1]).splitlines() == ["  app/", "+   app.py  1kB", "+   data.bin  2kB"]
    assert file_tree(STEPS[2]).splitlines() == ["  app/", "~   app.py  3B", "-   data.bin"]
    assert file_tree({"added": [], "removed": []}) == "(no file changes)"
    assert file_tree(STEPS[0]) == "(this layer's file list is not available)"


def test_text_is_deterministic_without_times() -> None:
    text = stack_text(STEPS)
    assert text.splitlines() == [
        "STEP   INSTRUCTION                                     LINE   RESULT                          SIZE",
        "#1     FROM busybox                                    1      CACHED                          -",
        "#2     COPY data.bin app.py /app/                      2      CACHED                          3kB",
        "#3     RUN rm /app/data.bin && echo v2 > /app/app.py   3      built (files changed: app.py)   10B",
        "image size 3.01kB, 3kB wasted",
    ]
    assert "1.25" not in text


def test_widget_rows_expand_to_their_files() -> None:
    stack = LayerStack(STEPS[:2])
    stack.add_step(STEPS[2])
    assert len(stack._rows.children) == 3
    assert [f.layout.display for f in stack._files] == ["none", "none", "none"]
    stack._toggles[2].click()
    assert stack.expanded == [2]
    assert stack._files[2].layout.display == "" and stack._toggles[2].description == "▾"
    assert "data.bin" in stack._files[2].value
    stack._toggles[2].click()
    assert stack.expanded == []
    row = stack._rows.children[2].children[0].children[1].value
    assert "nbdock-layer-built" in row and "files changed: app.py" in row and "1.2s" in row
    assert "nbdock-layer-cached" in stack._rows.children[1].children[0].children[1].value
    assert "3kB wasted" in stack._totals.value.replace("</b>", "")
    bundle = stack._repr_mimebundle_()
    assert bundle["text/plain"] == stack_text(STEPS)
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_steps_from_builder_events() -> None:
    events = [
        {"type": "build-started", "dockerfile": "Dockerfile", "context": "/c", "stages": ["0"]},
        {"type": "step-started", "id": 1, "stage": "", "index": 1, "total": 3,
         "text": "FROM busybox", "line": 1},
        {"type": "step-finished", "id": 1, "status": "done", "seconds": 0.0, "layer": None,
         "layer_size": None, "error": None},
        {"type": "step-started", "id": 2, "stage": "", "index": 2, "total": 3,
         "text": "COPY app.txt /app/", "line": 2},
        {"type": "step-finished", "id": 2, "status": "cached", "seconds": 0.0, "layer": "sha256:a",
         "layer_size": 10240, "error": None},
        {"type": "step-started", "id": 3, "stage": "", "index": 3, "total": 3,
         "text": "RUN make", "line": 3},
        {"type": "step-cache-miss", "id": 3, "kind": "parent", "reason": "an earlier step was rebuilt"},
        {"type": "step-output", "id": 3, "stream": "stdout", "text": "compiling\n"},
        {"type": "step-output", "id": 3, "stream": "stderr", "text": "warning\n"},
        {"type": "step-finished", "id": 3, "status": "failed", "seconds": 0.5, "layer": None,
         "layer_size": None, "error": "exit code 2"},
    ]
    steps = steps_from_events(events)
    assert [(s["step"], s["status"], s.get("size")) for s in steps] == [
        (1, "done", None), (2, "cached", 10240), (3, "failed", None)]
    assert steps[2]["output"] == "compiling\nwarning\n"
    assert [result_text(s) for s in steps] == ["done", "CACHED", "FAILED"]
    stack = LayerStack(steps, title="demo")
    assert stack.text().splitlines()[0] == "demo"
    assert "nbdock-layer-failed" in stack._rows.children[2].children[0].children[1].value
    assert "compiling" in stack._files[2].value
