"""The study's rows carry each run's compute (model FLOPs, MFU) from its training log, checked like every value."""

import json
import math

from study_helpers import micro_spec

from hf_posenc.results import PretrainResult
from hf_posenc.study import parse_spec
from hf_posenc.study.layout import TRAINING_LOG, unit_folder
from hf_posenc.study.rows import collect_rows


def write_pretraining(folder, **log):
    folder.mkdir(parents=True)
    PretrainResult(variant="rope", max_seq_length=32, train_steps=4, train_loss=6.0, eval_loss=6.0,
                   perplexity=math.exp(6.0), dataset="stdlib", tokenizer="WordPiece").save(folder)  # fmt: skip
    (folder / TRAINING_LOG).write_text(json.dumps({"parameters": 1000, "tokens_per_second": 500.0, **log}))


def test_rows_hold_model_flops_and_mfu_and_refuse_a_negative_one(tmp_path):
    spec = parse_spec(micro_spec())
    write_pretraining(unit_folder(tmp_path, "rope", 1) / "pretrain", model_flops=3.2e12, mfu=0.41)
    write_pretraining(unit_folder(tmp_path, "alibi", 1) / "pretrain", model_flops=3.2e12, mfu=None)
    write_pretraining(unit_folder(tmp_path, "att", 1) / "pretrain", model_flops=-1.0, mfu=0.3)
    rows = {row["run"]: row for row in collect_rows(spec, tmp_path)}
    assert rows["rope"]["model_flops"] == 3.2e12 and rows["rope"]["mfu"] == 0.41
    assert rows["alibi"]["mfu"] is None and rows["alibi"]["status"] == "ok"  # no peak known: undefined, not wrong
    assert rows["att"].get("model_flops") is None and rows["att"]["status"] == "failed"
    assert "model_flops = -1.0 is outside [0, inf]" in rows["att"]["errors"]
