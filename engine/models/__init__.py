"""Model zoo: offline presets and one loader for presets, local folders and hub ids.

``engine.catalog`` describes the presets; ``engine.models.loading`` turns a
checkpoint string into a transformers model. Neither is imported here, so
``import engine.models`` stays free of torch and transformers.
"""
