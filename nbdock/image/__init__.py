"""The OCI image store: references, documents, blobs, layers.

Public modules: ``reference`` (Docker-exact reference parsing), ``oci`` (media types, descriptors,
manifests, canonical JSON), ``validate`` (our checks of OCI documents), ``store`` (``ImageStore``,
``ImageRecord``, ``LayerRecord``), ``layers`` (safe extraction, ``diff_to_tar``), ``archive``
(compressed tar input), ``bootstrap`` (busybox and Debian base images without a registry).
Modules starting with ``_`` are internal to the store.
"""
