"""How the fixtures beside this file were made: tiny models of the variants whose computation changed in revision 2,
saved by hf_posenc at commit 6f71d41 (before revisions existed), with their outputs on fixed inputs. It only makes
sense with that version's code: `git worktree add /tmp/old 6f71d41`, then run this file with /tmp/old on PYTHONPATH
and the output folder as its argument. Learned biases are pushed below -50 so that revision 1's floor is exercised.
"""

import os
import sys

import torch
from safetensors.torch import save_file

import hf_posenc

SIZE = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=24, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
OPTIONS = {
    "deberta": dict(position_buckets=4, max_relative_positions=16),
    "tupe": dict(relative_attention_num_buckets=8, relative_attention_max_distance=16),
    "t5": dict(relative_attention_num_buckets=8, relative_attention_max_distance=16),
    "fire": dict(fire_hidden_size=8),
    "sinusoidal": {},
    "kerple": {},
}


def main(output: str) -> None:
    torch.manual_seed(0)
    input_ids = torch.randint(5, 40, (2, 14))
    attention_mask = torch.ones(2, 14, dtype=torch.long)
    attention_mask[1, 10:] = 0
    for variant, options in OPTIONS.items():
        model = hf_posenc.model_classes(variant)["AutoModel"](hf_posenc.create_config(variant, **SIZE, **options))
        position = model.eval().position
        with torch.no_grad():
            for parameter in position.parameters():
                parameter.add_(torch.randn_like(parameter))  # away from the initialisation
            if variant == "t5":
                position.relative_attention_bias.weight.sub_(60)
            if variant == "tupe":
                position.relative.relative_attention_bias.weight.sub_(60)
            if variant == "fire":
                position.mlp[2].bias.sub_(60)
            if variant == "kerple":
                position.scale[0] = -0.5  # below the floor: clamped in the forward
            hidden = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        folder = os.path.join(output, variant)
        model.save_pretrained(folder)
        for name in os.listdir(folder):
            if name.endswith(".py"):
                os.remove(os.path.join(folder, name))  # the code of that time is in git; only weights matter here
        outputs = {"input_ids": input_ids, "attention_mask": attention_mask, "last_hidden_state": hidden}
        save_file(outputs, os.path.join(folder, "expected_outputs.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1])
