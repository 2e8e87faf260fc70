"""The README's usage example runs as written."""

import os
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_usage_example_runs(tmp_path):
    usage = README.read_text().split("## Use\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", usage, re.DOTALL).group(1)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace = {}
        exec(compile(code, "README.md (Use)", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert (tmp_path / "my-rope" / "model.safetensors").exists()
    assert len(namespace["attentions"]) == 2
