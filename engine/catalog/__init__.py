"""What Lightbox knows about tasks and models before loading anything.

The task names, the offline model presets, what a checkpoint string names (a preset,
a folder or a hub id), which family a checkpoint belongs to and the image sizes it
takes. Pure data and file reads: no torch, no transformers, no network, so the run
config's validation, the CLI and the app's forms ask it freely. It is the engine's
bottom layer and imports nothing else from the engine; :mod:`engine.models` builds
the models it describes.
"""
