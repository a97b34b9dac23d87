"""Code templates for the StarCoderData demo, one module per language directory of the dump.

Each template is ``(rng, entity) -> (repository path, file content)`` and writes one kind of file
the real dump is full of: a documented library module, a messy script, a test, a CLI, a schema, a
config, or generated boilerplate. ``trellis.acquire.demo.starcoderdata`` weights the kinds per
language. A template's function name is recorded as the row's ``_kind`` and decides whether the
row counts as boilerplate, so the names are part of the generated corpus: do not rename them.
"""
