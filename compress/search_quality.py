"""`python -m compress.search_quality`: does the sampler earn its place, and what does early
stopping save?  Measured on the proxy study (`conf/experiment/proxy.yaml`) or, with
`--experiment full`, on the default study itself (`conf/experiment/full.yaml`).

    python -m compress.search_quality samplers --samplers nsgaii random --seeds 0 1 2 --trials 20
    python -m compress.search_quality early-stop --trials 24 --seed 0
    python -m compress.search_quality early-stop --experiment full --trials 60 --arms with   # one arm only

Each arm is an ordinary sweep (`python -m compress.sweep -m experiment=proxy ...`) with its own
study name in the experiment's store (`sweeps/proxy.db`, `sweeps/full.db`), so an interrupted
comparison resumes where it stopped; `--arms` runs one arm, so that the two can run side by side
(one thread each) and a last call without it, finding both done, summarises them.  An arm's
figures come from its stored trials: the hypervolume of its completed trials
(`compress/core/hypervolume.py`, reference point stated there) and its trial time, the sum of the
trials' run times (start to finish, as Optuna stored them), pruned trials included.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compress.search.quality import EXPERIMENTS, early_stop, samplers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m compress.search_quality", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("samplers", help="hypervolume after N trials per sampler and seed")
    s.add_argument("--samplers", nargs="+", default=["nsgaii", "random"])
    s.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    s.add_argument("--trials", type=int, default=20)
    e = sub.add_parser("early-stop", help="the same budget with and without early stopping")
    e.add_argument("--trials", type=int, default=24)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--experiment", choices=EXPERIMENTS, default="proxy",
                   help="proxy: 10%% of the data (conf/experiment/proxy.yaml); full: the default study")
    e.add_argument("--arms", nargs="+", choices=("without", "with"), default=["without", "with"],
                   help="run only these arms (to run the two side by side); the comparison needs both")
    for p in (s, e):
        p.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.json and args.what == "early-stop" and len(set(args.arms)) < 2:
        parser.error("--json needs both arms (--arms without with): the figures are a comparison")
    result = samplers(args) if args.what == "samplers" else early_stop(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
