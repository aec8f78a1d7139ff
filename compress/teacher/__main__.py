"""`python -m compress.teacher`: train the user's teacher, cached by a hash of its config and data
(the network and its training: compress/teacher/model.py)."""

from compress.config.cli import hydra_entry
from compress.teacher.model import main

if __name__ == "__main__":
    hydra_entry(main, config_name="config")
