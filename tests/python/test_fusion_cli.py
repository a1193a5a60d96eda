"""What `switchyard inspect` says about MoE fusion: fused layer names after fusion, reasons for what stays
unfused (the part and the node), and fused names accepted by --precision-override."""
import json

from conftest import ROOT

CORPUS = ROOT / "tests" / "corpus"
SWIGLU = CORPUS / "v02_where_index_add_softmax_sum_swiglu_script17.onnx"
CAPACITY = CORPUS / "v33_capacity_softmax_sum_swiglu_script17.onnx"


def test_inspect_nodes_lists_fused_layers(cli):
    out = cli("inspect", SWIGLU, "--nodes").stdout
    assert "after the graph passes" in out
    fused = [line.split()[0] for line in out.splitlines() if "ai.switchyard::MoE" in line]
    assert fused == ["moe_fused_/0/TopK"]
    listed = json.loads(cli("inspect", SWIGLU, "--nodes", "--json").stdout)["node_list"]
    assert "moe_fused_/0/TopK" in [n["name"] for n in listed]


def test_inspect_before_passes_lists_the_imported_graph(cli):
    listed = json.loads(cli("inspect", SWIGLU, "--nodes", "--before-passes", "--json").stdout)["node_list"]
    ops = [n["op"] for n in listed]
    assert "TopK" in ops and "ai.switchyard::MoE" not in ops
    after = json.loads(cli("inspect", SWIGLU, "--nodes", "--json").stdout)["node_list"]
    assert len(after) < len(listed) and all(n["precision"] == "fp32" for n in after)


def test_kernel_isa_is_reported_and_capped(cli):
    assert json.loads(cli("inspect", SWIGLU, "--json").stdout)["kernel_isa"] in ("avx512", "avx2", "portable")
    out = cli("inspect", SWIGLU, env_extra={"SWITCHYARD_ISA": "portable"}).stdout
    assert "kernels:     portable" in out


def test_fused_name_is_a_precision_override(cli, tmp_path):
    inputs = CORPUS / "v02_where_index_add_softmax_sum_swiglu_script17.inputs.npz"
    cli("run", SWIGLU, "--inputs", inputs, "--outputs", tmp_path / "o.npz", "--precision-override", "moe_fused_/0/TopK=bf16")


def test_unfused_layer_says_which_part_and_node(cli):
    notes = json.loads(cli("inspect", CAPACITY, "--json").stdout)["pass_notes"]
    reason = [n for n in notes if "not fused as MoE" in n]
    assert len(reason) == 1
    assert "router (capacity)" in reason[0] and "'/0/CumSum'" in reason[0], reason


def test_list_collecting_moe_runs_and_says_why_not_fused(cli, tmp_path):
    """Experts appended to Python lists under `if tok.numel() > 0` (Sequence ops inside If branches): the
    model runs (as ONNX Runtime does) and the note names the control flow."""
    model = ROOT / "tests" / "fixtures" / "list_moe_script.onnx"
    notes = json.loads(cli("inspect", model, "--json").stdout)["pass_notes"]
    assert any("inside the then_branch of node '/If'" in n for n in notes), notes


def test_fuzzed_model_without_a_combine_region_gets_a_reason(cli):
    # fuzz_model found this mutated corpus model: no combine value depends on the tokens alone, and the
    # proof ran a null region (UBSan). Now the layer stays unfused with the reason.
    model = ROOT / "tests" / "fuzz" / "regressions" / "combine_without_region.onnx"
    notes = json.loads(cli("inspect", model, "--json").stdout)["pass_notes"]
    assert any("depends on the tokens alone" in n for n in notes), notes
