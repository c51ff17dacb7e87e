"""Lightbox engine: the headless library under the desktop app.

Heavy optional parts (ray, mlflow, onnx) are imported where they are used, so
``import engine`` stays cheap and never pulls in Qt.
"""

__version__ = "0.1.0"
