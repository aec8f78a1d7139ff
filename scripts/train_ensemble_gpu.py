"""Train an ensemble's members at once on a machine with a GPU and PyTorch but no TensorFlow
(Keras 3 on the torch backend), one process per member; writes each member's weights.npz to OUT,
named by its recipe hash, for `python -m compress.ensemble ensemble.members_from=OUT` to import.

    KERAS_BACKEND=torch python scripts/train_ensemble_gpu.py --data DIR --out OUT --arch resnet --width 48 \
        --epochs 30 --members 3 --deadline-s 420
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compress.data import arrays, fashion_mnist  # noqa: E402
from compress.teacher import ensemble  # noqa: E402


def _train(args, member: int, deadline: float) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    try:
        import torch

        torch.set_num_threads(2)
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:  # another backend
        device = keras.backend.backend()
    splits = fashion_mnist.load(args.data)
    if args.limit:  # a quick check of this script
        splits = splits.sliced(args.limit)
    cfg = {"arch": args.arch, "width": args.width, "epochs": args.epochs, "batch_size": args.batch_size,
           "optimizer": args.optimizer, "learning_rate": args.lr, "weight_decay": args.wd, "flip": True,
           "max_shift": 2, "erase": args.erase, "seed": args.seed}
    recipe = ensemble.member_recipe(cfg, member, splits.image_shape, splits.num_classes)
    key = ensemble.recipe_hash(recipe, splits.fingerprint, int(splits.val_index.sum()))
    folder = Path(args.work) / key
    state = ensemble.train_member(keras, recipe, splits.x_train, splits.y_train, splits.x_val, splits.y_val,
                                  folder, deadline)
    if not state["epochs_done"]:
        print(json.dumps({"arch": args.arch, "member": member, "key": key, "epochs_done": 0}), flush=True)
        return
    if not state["finished"]:  # out of time: ship the last epoch's weights, marked unfinished
        model = keras.models.load_model(folder / "checkpoint.keras")
        ensemble.save_weights(model, folder / "weights.npz", state)
    state["device"] = device
    state["test_accuracy"] = arrays.keras_accuracy(
        ensemble.load_weights(keras, folder / "weights.npz")[0], splits.x_test, splits.y_test)
    final = ensemble.load_weights(keras, folder / "weights.npz")[0]
    ensemble.save_weights(final, Path(args.out) / f"{args.arch}{args.width}_m{member}_{key}.npz", state)
    last_val = state["history"][-1]["val_accuracy"] if state["history"] else None
    print(json.dumps({"arch": args.arch, "member": member, "key": key, "epochs_done": state["epochs_done"],
                      "finished": state["finished"], "val": last_val,
                      "test": state["test_accuracy"], "seconds": state["train_seconds"],
                      "epoch_s": [h["seconds"] for h in state["history"]][:3]}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--work", default="/tmp/ensemble_work")
    p.add_argument("--arch", default="resnet")
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--erase", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=float, default=0.0, help="train on this share of the data (a check)")
    p.add_argument("--deadline-s", type=float, default=420)
    args = p.parse_args()
    deadline = time.time() + args.deadline_s
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_train, args=(args, m, deadline)) for m in range(args.members)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()


if __name__ == "__main__":
    main()
