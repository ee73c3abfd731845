"""Run pytest as if torch were not installed: every ``import torch`` fails as it does without it.

    python tests/without_torch.py -m "not probe and not cli"      # the torch-free tier

The rules, the configuration, the renderers and the rule docs must work on a machine without torch
(a CI job that lints frozen reports, an editor plugin); this runs their tests under that condition in
any environment.  tests/test_tiers.py runs it in the full suite.
"""

import importlib.abc
import sys


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by tests/without_torch.py)", name=name)
        return None


if __name__ == "__main__":
    if any(m == "torch" or m.startswith("torch.") for m in sys.modules):
        sys.exit("tests/without_torch.py: torch was imported before the block could be installed")
    sys.meta_path.insert(0, _NoTorch())
    import pytest

    sys.exit(pytest.main(sys.argv[1:]))
