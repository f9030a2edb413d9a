"""Export trained generator weights to ONNX (target encoder + per-frame decode graphs).

    python -m training.export --weights RUN/generator.pt --out exported/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from models.marionette.runtime import OnnxRuntime, TorchRuntime, export_onnx, load_generator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="generator.pt from training.train")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the .onnx files")
    args = parser.parse_args(argv)
    if not args.weights.is_file():
        parser.error(f"no such file: {args.weights}")
    model = load_generator("lite", args.weights)
    target_path, decode_path = export_onnx(model, args.out)
    # Check the export against torch on random inputs before anyone ships it.
    size = model.config.image_size
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2, 1, 3, size, size)).astype(np.float32)
    drivers = rng.uniform(-1, 1, (2, 3, size, size)).astype(np.float32)
    reference = TorchRuntime(model)
    features = reference.encode_targets(images, images)
    error = float(np.abs(OnnxRuntime(model.config, target_path, decode_path).decode(drivers, features)
                         - reference.decode(drivers, features)).max())
    print(f"wrote {target_path} and {decode_path}; max |onnxruntime - torch| = {error:.2e}")
    return 0 if error < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
