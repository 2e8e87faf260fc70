"""Bring your own positional encoding: register it, pretrain it, measure it, export it, and load the export where
neither hf_posenc nor your module can be imported (what a Hub user does).

    python examples/custom_encoding.py                                # 300 steps of a tiny model, a few minutes on CPU
    python examples/custom_encoding.py --max_steps 20 --output_dir /tmp/gw

The encoding is `examples/my_encoding/gaussian_window.py`: a learned Gaussian window per head, registered with
`hf_posenc.register_encoding`. The same file works with every command once it is named in HF_POSENC_ENCODINGS:

    HF_POSENC_ENCODINGS=examples/my_encoding/gaussian_window.py hf-posenc pretrain --variant gaussian_window ...
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import hf_posenc
from hf_posenc.cli import exit_on_user_error

ENCODING_FILE = Path(__file__).resolve().parent / "my_encoding" / "gaussian_window.py"

# Run by a fresh interpreter in which hf_posenc and the encoding's module cannot be imported.
LOAD_WITHOUT_HF_POSENC = r"""
import json, sys
sys.modules["hf_posenc"] = None
sys.modules["gaussian_window"] = None
import torch
from transformers import AutoModelForMaskedLM
folder, ids = sys.argv[1], torch.tensor(json.loads(sys.argv[2]))
model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True).eval()
with torch.no_grad():
    logits = model(input_ids=ids).logits
print(json.dumps({"class": type(model).__name__, "module": type(model).__module__, "logits": logits.tolist()}))
"""


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output_dir", default="outputs/custom-encoding", help="run folder; the export goes to <it>-hub"
    )
    parser.add_argument("--max_steps", type=int, default=300, help="pretraining steps (default 300)")
    parser.add_argument(
        "--init_width", type=float, default=4.0, help="each head's window width at the start, in tokens"
    )
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_arguments(argv)
    # Registers "gaussian_window" (a malformed encoding fails here, before any data is read) and names the file in
    # HF_POSENC_ENCODINGS for any process started from here.
    hf_posenc.import_encoding_modules([str(ENCODING_FILE)])
    from hf_posenc.hub import export_run
    from hf_posenc.training import pretrain, pretrain_arguments

    run_dir = Path(args.output_dir)
    result = pretrain(
        **pretrain_arguments(
            variant="gaussian_window",
            gaussian_window_init_width=args.init_width,
            corpus="stdlib",
            vocab_size=1000,
            max_seq_length=64,
            config_overrides="hidden_size=64,num_hidden_layers=2,num_attention_heads=4,intermediate_size=128",
            per_device_train_batch_size=16,
            max_steps=args.max_steps,
            logging_steps=max(1, args.max_steps // 4),
            eval_steps=max(1, args.max_steps // 2),
            save_steps=args.max_steps,
            report_to=[],
            disable_tqdm=True,
            output_dir=str(run_dir),
            overwrite_output_dir=True,
        )
    )
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(run_dir).eval()
    widths = model.posenc.position.widths().tolist()
    export_dir = export_run(run_dir, run_dir.parent / f"{run_dir.name}-hub", overwrite=True)

    ids = torch.randint(5, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    with tempfile.TemporaryDirectory() as elsewhere:  # a folder from which examples/ is not importable
        completed = subprocess.run(
            [sys.executable, "-c", LOAD_WITHOUT_HF_POSENC, str(export_dir.resolve()), json.dumps(ids.tolist())],
            capture_output=True,
            text=True,
            cwd=elsewhere,
            env={"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(Path(elsewhere) / "modules"), "PATH": "/usr/bin:/bin"},
        )
    if completed.returncode != 0:
        raise RuntimeError(f"the export did not load without hf_posenc: {completed.stderr.strip().splitlines()[-1]}")
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    summary = {
        "variant": result.variant,
        "train_steps": result.train_steps,
        "eval_loss": result.eval_loss,
        "locality": result.locality,
        "symmetry": result.symmetry,
        "learned_widths": [round(width, 3) for width in widths],
        "export": str(export_dir),
        "export_files": sorted(path.name for path in export_dir.glob("*.py")),
        "clean_process_class": loaded["class"],
        "clean_process_same_logits": torch.allclose(torch.tensor(loaded["logits"]), expected, atol=1e-5, rtol=0),
    }
    print(
        f"gaussian_window after {result.train_steps} steps: eval loss {result.eval_loss:.3f}, locality "
        f"{result.locality:.3f}, symmetry {result.symmetry:.3f}, widths sigma_h {summary['learned_widths']} tokens; "
        f"{export_dir} loads without hf_posenc as {loaded['class']} "
        f"({'the same' if summary['clean_process_same_logits'] else 'DIFFERENT'} logits)."
    )
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    exit_on_user_error(main, "custom_encoding.py")
