"""Export a trained run: a Hugging Face folder, ONNX (parity checked), the MLflow registry.

Modules, one job each: ``source`` (which run and checkpoint), ``hf`` (the HF folder),
``onnx_export`` (model.onnx), ``runtime`` (pre/post-processing and the two backends),
``parity`` (PyTorch against onnxruntime), ``registry`` (MLflow model versions),
``predict`` (COCO results from an export), ``manifest`` (lightbox-export.json),
``build`` (the export itself, written atomically) and ``cli`` (the verbs).
onnx, onnxruntime and mlflow are imported where they are used.
"""
