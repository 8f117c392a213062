# conformance/: outbox-sink-conformance, the plugin author's contract checker (conformance/README.md).
