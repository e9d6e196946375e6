"""Fine-tunes on image folders: options, the loop (+DDP), checkpoints and predict, image data.

`bench.train.finetune`, `TrainOptions`, `parse_train_options` and `load_checkpoint` are imported
lazily, so that validating a suite's `train:` keys (`bench.train.options`) loads no torch.
"""

from __future__ import annotations

from bench.core.lazy import lazy_attributes

_EXPORTS = {
    "finetune": "bench.train.loop",
    "FinetuneOutcome": "bench.train.loop",
    "TrainOptions": "bench.train.options",
    "parse_train_options": "bench.train.options",
    "load_checkpoint": "bench.train.checkpoints",
    "predict_images": "bench.train.checkpoints",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS)
