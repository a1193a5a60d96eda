"""Real modeling code in the corpus: the sparse-MoE blocks of Hugging Face `transformers`, built from small
configs with random weights (nothing downloaded), exported by tracing, with PyTorch's outputs on inputs of
another batch and sequence length than the export example.

  transformers 4.49 on Debian's torch 1.13:   /work/venv-hf449/bin/python scripts/hf_moe_blocks.py
      (python3 -m venv --system-site-packages VENV; VENV/bin/pip install transformers==4.49.0)
  transformers 5.x on PyPI torch 2.x:         VENV2/bin/python scripts/hf_moe_blocks.py

Writes into tests/corpus (NAME.onnx, NAME.inputs.npz, NAME.expected.npz) and adds the entries to its
manifest.json. Tests need no torch.
"""
import argparse
import copy
import math
import os
import sys

import numpy as np
import torch
import transformers

from moe_corpus import update_manifest

TORCH2 = int(torch.__version__.split(".")[0]) >= 2
TF5 = int(transformers.__version__.split(".")[0]) >= 5


def randomize(module, seed):
    """Weights of a trained network's scale (HF's init gives std 0.02: outputs too small to compare);
    routers 3x larger so that routing is decided, not a near-tie that rounding could flip."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            fan_in = p.shape[-1] if p.dim() > 1 else 16
            p.normal_(0.0, 1.0 / math.sqrt(fan_in))
            if any(k in name for k in ("gate.weight", "router", "gate.wg")) and "gate_proj" not in name and "gate_up" not in name:
                p.mul_(3.0)
            if "e_score_correction_bias" in name:
                p.normal_(0.0, 0.1)


class FirstOutput(torch.nn.Module):
    """The block's hidden-state output only (blocks also return router logits)."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, hidden):
        out = self.block(hidden)
        return out[0] if isinstance(out, tuple) else out


def blocks():
    """name -> (block factory, hidden size, MoE layers, description)."""
    H, I = 32, 48
    out = {}
    if not TF5:
        from transformers.models.mixtral.modeling_mixtral import MixtralConfig, MixtralSparseMoeBlock
        from transformers.models.olmoe.modeling_olmoe import OlmoeConfig, OlmoeSparseMoeBlock
        from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeConfig, Qwen2MoeSparseMoeBlock
        from transformers.models.dbrx.modeling_dbrx import DbrxConfig, DbrxFFN
        from transformers.models.phimoe.modeling_phimoe import PhimoeConfig, PhimoeSparseMoeBlock
        out["hf449_mixtral"] = (lambda: MixtralSparseMoeBlock(MixtralConfig(
            hidden_size=H, intermediate_size=I, num_local_experts=8, num_experts_per_tok=2)), H)
        out["hf449_olmoe"] = (lambda: OlmoeSparseMoeBlock(OlmoeConfig(
            hidden_size=H, intermediate_size=I, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False)), H)
        out["hf449_olmoe_norm"] = (lambda: OlmoeSparseMoeBlock(OlmoeConfig(
            hidden_size=H, intermediate_size=I, num_experts=16, num_experts_per_tok=4, norm_topk_prob=True)), H)
        out["hf449_qwen2moe"] = (lambda: Qwen2MoeSparseMoeBlock(Qwen2MoeConfig(
            hidden_size=H, moe_intermediate_size=I, shared_expert_intermediate_size=2 * I, num_experts=8,
            num_experts_per_tok=2, norm_topk_prob=False)), H)
        out["hf449_dbrx"] = (lambda: DbrxFFN(DbrxConfig(d_model=H, ffn_config={
            "ffn_hidden_size": I, "moe_num_experts": 8, "moe_top_k": 2, "moe_jitter_eps": None,
            "moe_normalize_expert_weights": 1.0})), H)
        out["hf449_phimoe"] = (lambda: PhimoeSparseMoeBlock(PhimoeConfig(
            hidden_size=H, intermediate_size=I, num_local_experts=8, num_experts_per_tok=2)), H)
        # Not here: GraniteMoe and JetMoe (their ParallelExperts split the sorted rows by
        # `expert_size.tolist()`, which tracing bakes into a constant Split: the export fails on any other
        # routing, in every engine), and SwitchTransformersSparseMLP (capacity-limited, must stay unfused) exports with torch 1.13
        # as a graph that no engine runs (`next_states[mask] = ...` becomes a wrong Expand); the corpus has
        # its own capacity-limited variants (scripts/moe_corpus.py, "capacity").
    else:
        for family in TF5_FAMILIES:
            try:
                out.update(tf5_blocks(family, H, I))
            except Exception as e:  # a family whose block cannot be built from a small config: say so
                print(f"tf5_{family}: not built: {str(e).splitlines()[0][:200]}", file=sys.stderr)
    return out


# transformers 5.x families with a sparse-MoE block (one packed 3-D experts class shared by all).
TF5_FAMILIES = ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss", "glm4_moe", "ernie4_5_moe",
                "hunyuan_v1_moe", "dots1", "minimax", "phimoe", "flex_olmo", "qwen3_next", "deepseek_v2", "lfm2_moe"]


BLOCK_CLASS = {"gpt_oss": "GptOssMLP"}  # families whose MoE block is not named *MoE / *SparseMoeBlock


def tf5_blocks(family, H, I):
    """The family's MoE block from a small config: names -> (factory, hidden)."""
    import importlib
    mod = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    conf_mod = importlib.import_module(f"transformers.models.{family}.configuration_{family}")
    config_cls = [getattr(conf_mod, n) for n in dir(conf_mod) if n.endswith("Config") and n != "PreTrainedConfig"
                  and isinstance(getattr(conf_mod, n), type) and getattr(conf_mod, n).__module__ == conf_mod.__name__][0]
    block_names = [BLOCK_CLASS[family]] if family in BLOCK_CLASS else [n for n in dir(mod) if n.endswith(("SparseMoeBlock", "MoE", "Moe", "MoeBlock", "SparseMoE"))
                   and isinstance(getattr(mod, n), type) and issubclass(getattr(mod, n), torch.nn.Module)]
    if not block_names:
        raise RuntimeError("no sparse-MoE block class")
    block_cls = getattr(mod, sorted(block_names, key=len)[0])
    kw = dict(hidden_size=H, intermediate_size=I, moe_intermediate_size=I, num_experts=8, num_local_experts=8,
              n_routed_experts=8, moe_num_experts=8, num_experts_per_tok=2, moe_k=2, moe_topk=2, top_k=2,
              n_shared_experts=1, moe_num_shared_experts=1, shared_expert_intermediate_size=2 * I,
              n_group=2, topk_group=1, routed_scaling_factor=2.5, norm_topk_prob=True, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=8, first_k_dense_replace=0,
              moe_layer_freq=1, decoder_sparse_step=1, mlp_only_layers=[], layer_types=None)
    config = config_cls(**kw)
    out = {}
    # Only batched_mm: the eager loop (`for expert in expert_hit`) cannot be captured by dynamo, and tracing
    # bakes in the experts the example hit, so that export fails on inputs that miss one (Switchyard leaves
    # it unfused and says so: "a matrix picked ... by a data-dependent number").
    for impl in ("batched_mm",):
        def factory(impl=impl):
            c = copy.deepcopy(config)
            c._experts_implementation = impl
            return block_cls(c)
        out[f"tf5_{family}_{impl}"] = (factory, H)
    return out


class TokensToLogits(torch.nn.Module):
    """A whole causal LM: token ids -> logits (no cache)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids):
        return self.lm(input_ids=input_ids, use_cache=False, return_dict=False)[0]


def export_causal_lm(out_dir, seed):
    """A whole tiny MixtralForCausalLM (2 decoder layers, each with a sparse-MoE block): every layer's MoE
    must fuse. 4.49: traced; 5.x: dynamo=True with the batched_mm experts."""
    from transformers import MixtralConfig, MixtralForCausalLM
    cfg = MixtralConfig(vocab_size=128, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2, max_position_embeddings=128,
                        use_cache=False, attn_implementation="eager")
    if TF5:
        cfg._experts_implementation = "batched_mm"
    lm = MixtralForCausalLM(cfg).eval()
    randomize(lm, seed)
    model = TokensToLogits(lm).eval()
    gen = torch.Generator().manual_seed(seed)
    example = torch.randint(0, 128, (2, 24), generator=gen)
    test = torch.randint(0, 128, (3, 5), generator=gen)
    with torch.no_grad():
        expected = model(test).numpy()
    name = ("tf5" if TF5 else "hf449") + "_mixtral_causallm"
    path = os.path.join(out_dir, name + ".onnx")
    if TF5:
        dims = (torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=128))
        torch.onnx.export(model, (example,), path, opset_version=18, input_names=["input_ids"], output_names=["logits"],
                          dynamo=True, external_data=False, dynamic_shapes=({0: dims[0], 1: dims[1]},))
    else:
        torch.onnx.export(model, (example,), path, opset_version=17, input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}})
    np.savez(os.path.join(out_dir, name + ".inputs.npz"), input_ids=test.numpy())
    np.savez(os.path.join(out_dir, name + ".expected.npz"), logits=expected)
    how = "dynamo=True" if TF5 else "torch.jit.trace"
    return dict(name=name, variant=name, export=f"{how} (torch {torch.__version__.split('+')[0]}, transformers "
                f"{transformers.__version__}), opset {18 if TF5 else 17}", router="hf", dispatch="hf", combine="hf",
                body="hf", bias=False, experts=8, k=2, layers=2)


def export_block(name, factory, hidden, out_dir, seed):
    block = factory().eval()
    randomize(block, seed)
    model = FirstOutput(block).eval()
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(2, 24, hidden, generator=gen)
    test = torch.randn(3, 5, hidden, generator=gen)
    with torch.no_grad():
        expected = model(test).numpy()
    path = os.path.join(out_dir, name + ".onnx")
    # transformers 5: its batched_mm experts by torch's default exporter (dynamo=True), its eager loop by
    # the TorchScript one (dynamo cannot capture the loop's data-dependent `expert_hit`).
    dynamo = TF5 and name.endswith("batched_mm")
    if dynamo:
        dims = (torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=4096))
        torch.onnx.export(model, (example,), path, opset_version=18, input_names=["hidden"], output_names=["out"],
                          dynamo=True, external_data=False, dynamic_shapes=({0: dims[0], 1: dims[1]},))
    else:
        kw = {"dynamo": False} if TORCH2 else {}
        torch.onnx.export(model, (example,), path, opset_version=17, input_names=["hidden"], output_names=["out"],
                          dynamic_axes={"hidden": {0: "batch", 1: "seq"}, "out": {0: "batch", 1: "seq"}}, **kw)
    np.savez(os.path.join(out_dir, name + ".inputs.npz"), hidden=test.numpy())
    np.savez(os.path.join(out_dir, name + ".expected.npz"), out=expected)
    extra = {"expect_unfused": "capacity"} if "capacity" in name else {}
    how = "dynamo=True" if dynamo else "torch.jit.trace"
    return dict(name=name, variant=name, **extra, export=f"{how} (torch {torch.__version__.split('+')[0]}, "
                f"transformers {transformers.__version__}), opset {18 if dynamo else 17}", router="hf", dispatch="hf", combine="hf",
                body="hf", bias=False, experts=0, k=0, layers=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "corpus"))
    ap.add_argument("--only", default=None)
    ap.add_argument("--large", metavar="DIR", help="transformers 5: write the Mixtral-sized batched_mm export to DIR")
    args = ap.parse_args()
    if args.large:
        from transformers.models.mixtral.modeling_mixtral import MixtralConfig, MixtralSparseMoeBlock
        os.makedirs(args.large, exist_ok=True)
        cfg = MixtralConfig(hidden_size=1024, intermediate_size=2816, num_local_experts=8, num_experts_per_tok=2)
        cfg._experts_implementation = "batched_mm"
        block = MixtralSparseMoeBlock(cfg).eval()
        randomize(block, 1)
        dims = (torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=4096))
        torch.onnx.export(FirstOutput(block).eval(), (torch.randn(1, 32, 1024),),
                          os.path.join(args.large, "large_tf5_mixtral_batched_mm_h1024_i2816.onnx"), opset_version=18,
                          input_names=["hidden"], output_names=["out"], dynamo=True, external_data=False,
                          dynamic_shapes=({0: dims[0], 1: dims[1]},))
        return
    for i, (name, (factory, hidden)) in enumerate(sorted(blocks().items())):
        if args.only and name != args.only:
            continue
        try:
            update_manifest(args.out, [export_block(name, factory, hidden, args.out, seed=500 + i)])
            print(name, file=sys.stderr)
        except Exception as e:
            print(f"{name}: export failed: {str(e).splitlines()[0][:300]}", file=sys.stderr)
    if not args.only or args.only.endswith("causallm"):
        try:
            update_manifest(args.out, [export_causal_lm(args.out, seed=900)])
        except Exception as e:
            print(f"causal LM: export failed: {str(e).splitlines()[0][:300]}", file=sys.stderr)


if __name__ == "__main__":
    main()
