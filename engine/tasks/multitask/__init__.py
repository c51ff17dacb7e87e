"""Several tasks learnt at once: one shared backbone, one head per task.

Usage (offline, presets such as ``resnet-50`` stand in for hub ids; the public names are
also importable from ``engine.tasks.common.multitask``, the seed's path)::

    config = MultiTaskConfig(tasks=["classification", "detection"],
                             model_checkpoints={"classification": "microsoft/resnet-50",
                                                "detection": "facebook/detr-resnet-50"})
    model = MultiTaskModule(config)          # heads are sized from the data module in setup()
    trainer.fit(model, MultiTaskDataModule.from_folder(folder, tasks=config.tasks))

Design:

* **Shared backbone.** The backbone comes from the checkpoint of the FIRST task,
  in ``tasks`` order, whose checkpoint has a backbone form (a ResNet-like
  classifier, or a DETR, whose ResNet is taken). ``["classification",
  "detection"]`` with ``microsoft/resnet-50`` and ``facebook/detr-resnet-50``
  shares the classifier's ResNet-50; ``["segmentation", "detection"]`` with a
  SegFormer skips it (no backbone form) and takes the DETR's ResNet. The other
  checkpoints only matter as candidates for this: the heads are always new.
  The backbone runs once per batch; every head reads its last feature map.
* **Heads.** Classification: global average pool, dropout, linear.
  Segmentation: a small convolutional decoder whose logits are resized to the
  input, cross-entropy ignoring 255. Detection: a compact DETR (input
  projection, 2-D sine positions, ``nn.TransformerEncoder``/``Decoder``,
  learned queries, K + 1 class logits with "no object" last, a 3-layer box MLP)
  trained with Hungarian matching and CE (no-object weight 0.1) + L1 + GIoU.
  No auxiliary decoder losses: ``nn.TransformerDecoder`` hides its layers' outputs.
* **Data.** One augmentation pipeline (the detection one) carries the image,
  boxes and mask together, so every task sees the same geometry. Validation
  keeps DETR's probe box, which says where the original image lies on the canvas.
* **Loss.** ``sum(weight[t] * loss[t])``; a task of weight 0 is left out of the
  sum, so its head gets no gradient (its loss is still logged).

Where each part lives: :mod:`.config` (``MultiTaskConfig``, the task list rules),
:mod:`.backbone` (which checkpoint gives the shared backbone), :mod:`.datamodule`
(samples carrying every task's labels), :mod:`.heads` (one head per task),
:mod:`.detection_loss` (DETR's set loss for the detection head) and
:mod:`.lightning_module` (``MultiTaskModule``).
"""
