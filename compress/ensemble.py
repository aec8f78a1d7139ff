"""`python -m compress.ensemble [ensemble=resnet48|user64] [ensemble.members_from=DIR]`: build the stronger
teacher that `distill.teacher=ensemble` distils from (compress/teacher/tutor.py), kept apart from the
user's reference teacher."""

from compress.config.cli import hydra_entry
from compress.config.validate import validate
from compress.data import sources
from compress.teacher import tutor


def main(cfg) -> dict:
    validate(cfg)
    splits = sources.load_from_config(cfg.data, str(cfg.paths.cache_dir))
    target = tutor.target_path(cfg.ensemble, splits.kind, str(cfg.paths.sweeps_dir), str(cfg.paths.study))
    card = tutor.build(cfg.ensemble, splits, cfg.paths.cache_dir, target)
    members = ", ".join(f"{m['test_accuracy']:.4f}" for m in card["members"])
    print(f"ensemble {card['name']}: val {card['val_accuracy']:.4f}  test {card['test_accuracy']:.4f} "
          f"(members' test: {members})  {card['size_bytes']:,} bytes  -> {target}")
    return card


if __name__ == "__main__":
    hydra_entry(main, config_name="config")
