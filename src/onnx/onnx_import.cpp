#include "onnx/onnx_import.h"

#include <onnx/onnx_pb.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <charconv>
#include <cstring>

namespace switchyard {
namespace fs = std::filesystem;

namespace {

constexpr int kMaxSubgraphDepth = 16;  // protobuf itself refuses ~30 levels of graph nesting
constexpr int kMaxNodesPerGraph = 1000000;
constexpr size_t kMaxModelBytes = size_t{4} << 30;

DType dtype_from_onnx(int t, const std::string& where) {
  switch (t) {
    case onnx::TensorProto::FLOAT: return DType::kFloat32;
    case onnx::TensorProto::FLOAT16: return DType::kFloat16;
    case onnx::TensorProto::BFLOAT16: return DType::kBFloat16;
    case onnx::TensorProto::DOUBLE: return DType::kFloat64;
    case onnx::TensorProto::INT64: return DType::kInt64;
    case onnx::TensorProto::INT32: return DType::kInt32;
    case onnx::TensorProto::INT16: return DType::kInt16;
    case onnx::TensorProto::INT8: return DType::kInt8;
    case onnx::TensorProto::UINT8: return DType::kUInt8;
    case onnx::TensorProto::UINT16: return DType::kUInt16;
    case onnx::TensorProto::UINT32: return DType::kUInt32;
    case onnx::TensorProto::UINT64: return DType::kUInt64;
    case onnx::TensorProto::BOOL: return DType::kBool;
    default: break;
  }
  throw Error(where + ": unsupported tensor element type " + std::to_string(t));
}

std::string read_file(const std::string& path, size_t limit) {
  std::error_code ec;
  SY_CHECK(fs::is_regular_file(path, ec), "cannot open '" + path + "': not a readable file");
  auto size = fs::file_size(path, ec);
  SY_CHECK(!ec, "cannot read size of '" + path + "'");
  SY_CHECK(size <= limit, "'" + path + "' is larger than the " + std::to_string(limit) + "-byte limit");
  std::ifstream in(path, std::ios::binary);
  SY_CHECK(in, "cannot open '" + path + "'");
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  SY_CHECK(in.gcount() == static_cast<std::streamsize>(size), "short read on '" + path + "'");
  return bytes;
}

// Resolves an external-data location, refusing anything that leaves the model's folder.
std::string confined_path(const std::string& base_dir, const std::string& location, const std::string& where) {
  SY_CHECK(!base_dir.empty(), where + ": external data '" + location + "' but the model was not loaded from a file");
  fs::path loc(location);
  SY_CHECK(!loc.is_absolute(), where + ": external data path '" + location + "' is absolute");
  for (const auto& part : loc) SY_CHECK(part != "..", where + ": external data path '" + location + "' contains '..'");
  std::error_code ec;
  fs::path base = fs::weakly_canonical(fs::path(base_dir), ec);
  fs::path full = fs::weakly_canonical(base / loc, ec);
  SY_CHECK(!ec, where + ": cannot resolve external data path '" + location + "'");
  auto rel = full.lexically_relative(base);
  SY_CHECK(!rel.empty() && *rel.begin() != "..",
           where + ": external data path '" + location + "' resolves outside the model folder");
  return full.string();
}

// external_data values are strings in the proto; a non-number is the file's fault, not a crash.
int64_t parse_external_number(const std::string& text, const char* key, const std::string& where) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  SY_CHECK(ec == std::errc() && end == text.data() + text.size() && !text.empty(),
           where + ": external data " + key + " '" + text + "' is not an integer");
  return value;
}

template <typename Src, typename Dst>
void copy_field(const Src& field, Dst* out, int64_t n, const std::string& where) {
  SY_CHECK(field.size() == n, where + ": holds " + std::to_string(field.size()) + " values, shape needs " + std::to_string(n));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Dst>(field.Get(static_cast<int>(i)));
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir) {
  std::string where = "initializer '" + p.name() + "'";
  SY_CHECK(!p.has_segment(), where + ": segmented tensors are not supported");
  DType dt = dtype_from_onnx(p.data_type(), where);
  Shape shape(p.dims().begin(), p.dims().end());
  int64_t n = 0;
  try {
    n = checked_numel(shape);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  size_t bytes = static_cast<size_t>(n) * dtype_size(dt);

  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : p.external_data()) {
      if (kv.key() == "location") location = kv.value();
      else if (kv.key() == "offset") offset = parse_external_number(kv.value(), "offset", where);
      else if (kv.key() == "length") length = parse_external_number(kv.value(), "length", where);
    }
    SY_CHECK(!location.empty(), where + ": external data without a location");
    std::string path = confined_path(base_dir, location, where);
    std::error_code ec;
    auto fsize = static_cast<int64_t>(fs::file_size(path, ec));
    SY_CHECK(!ec, where + ": cannot open external data file '" + location + "'");
    if (length < 0) length = fsize - offset;
    SY_CHECK(offset >= 0 && length >= 0 && offset <= fsize && length <= fsize - offset,
             where + ": external data range is outside file '" + location + "'");
    SY_CHECK(static_cast<size_t>(length) == bytes,
             where + ": external data has " + std::to_string(length) + " bytes, shape needs " + std::to_string(bytes));
    Tensor t(dt, shape);
    std::ifstream in(path, std::ios::binary);
    in.seekg(offset);
    in.read(static_cast<char*>(t.raw()), length);
    SY_CHECK(in.gcount() == length, where + ": short read from '" + location + "'");
    return t;
  }

  // Declared dims are checked against the data actually present before anything is allocated.
  if (p.has_raw_data()) {
    SY_CHECK(p.raw_data().size() == bytes, where + ": raw_data has " + std::to_string(p.raw_data().size()) +
                                               " bytes, shape " + shape_str(shape) + " needs " + std::to_string(bytes));
    Tensor t(dt, shape);
    if (bytes) std::memcpy(t.raw(), p.raw_data().data(), bytes);
    return t;
  }
  int64_t present = 0;
  switch (dt) {
    case DType::kFloat32: present = p.float_data_size(); break;
    case DType::kFloat64: present = p.double_data_size(); break;
    case DType::kInt64: present = p.int64_data_size(); break;
    case DType::kUInt32: case DType::kUInt64: present = p.uint64_data_size(); break;
    default: present = p.int32_data_size(); break;
  }
  SY_CHECK(present == n, where + ": holds " + std::to_string(present) + " values, shape " + shape_str(shape) +
                             " needs " + std::to_string(n));
  Tensor t(dt, shape);
  switch (dt) {
    case DType::kFloat32: copy_field(p.float_data(), t.data<float>(), n, where); break;
    case DType::kFloat64: copy_field(p.double_data(), t.data<double>(), n, where); break;
    case DType::kInt64: copy_field(p.int64_data(), t.data<int64_t>(), n, where); break;
    case DType::kUInt32: case DType::kUInt64:
      if (dt == DType::kUInt32) copy_field(p.uint64_data(), static_cast<uint32_t*>(t.raw()), n, where);
      else copy_field(p.uint64_data(), static_cast<uint64_t*>(t.raw()), n, where);
      break;
    case DType::kInt32: copy_field(p.int32_data(), t.data<int32_t>(), n, where); break;
    case DType::kInt16: copy_field(p.int32_data(), t.data<int16_t>(), n, where); break;
    case DType::kInt8: copy_field(p.int32_data(), t.data<int8_t>(), n, where); break;
    case DType::kUInt8: copy_field(p.int32_data(), t.data<uint8_t>(), n, where); break;
    case DType::kUInt16: case DType::kFloat16: case DType::kBFloat16:
      copy_field(p.int32_data(), static_cast<uint16_t*>(t.raw()), n, where);
      break;
    case DType::kBool: copy_field(p.int32_data(), t.data<bool>(), n, where); break;
    default: throw Error(where + ": no data");
  }
  return t;
}

Tensor load_tensor_pb(const std::string& path) {
  std::string bytes = read_file(path, kMaxModelBytes);
  onnx::TensorProto proto;
  SY_CHECK(proto.ParseFromString(bytes), "'" + path + "' is not a valid TensorProto");
  return tensor_from_proto(proto, fs::path(path).parent_path().string());
}

namespace {

// Inputs and outputs counted against the operator's ONNX schema (when libonnx knows the op), so
// that graph passes and kernels can rely on the arity: a Mul with one input is the file's error.
void check_arity(const Node& node) {
  const auto& known = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto range = known.find(node.domain);
  if (range == known.end()) return;
  const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(node.op_type, node.opset, node.domain);
  if (!schema) return;
  const int ins = static_cast<int>(node.inputs.size()), outs = static_cast<int>(node.outputs.size());
  if (node.opset > range->second.second) {
    // Newer than libonnx knows: its latest schema may predate added inputs (ReduceMean-18's axes),
    // but the minimum counts have not grown, and passes and kernels rely on them.
    SY_CHECK(ins >= schema->min_input() && outs >= schema->min_output(),
             node.describe() + ": has " + std::to_string(ins) + " inputs and " + std::to_string(outs) + " outputs, " +
                 node.op_type + " takes at least " + std::to_string(schema->min_input()) + " and " +
                 std::to_string(schema->min_output()));
    return;
  }
  SY_CHECK(ins >= schema->min_input() && ins <= schema->max_input(),
           node.describe() + ": has " + std::to_string(ins) + " inputs, " + node.op_type + " takes " +
               std::to_string(schema->min_input()) + ".." + std::to_string(schema->max_input()));
  SY_CHECK(outs >= schema->min_output() && outs <= schema->max_output(),
           node.describe() + ": has " + std::to_string(outs) + " outputs, " + node.op_type + " takes " +
               std::to_string(schema->min_output()) + ".." + std::to_string(schema->max_output()));
  const auto& formal = schema->inputs();
  for (int i = 0; i < ins && i < static_cast<int>(formal.size()); ++i)
    SY_CHECK(node.inputs[static_cast<size_t>(i)] >= 0 || formal[static_cast<size_t>(i)].GetOption() != onnx::OpSchema::Single,
             node.describe() + ": required input " + std::to_string(i) + " ('" + formal[static_cast<size_t>(i)].GetName() +
                 "') is empty");
}

struct Importer {
  const Model& model;
  std::string base_dir;

  Attribute convert_attribute(const onnx::AttributeProto& a, const std::string& where, int depth,
                              const std::vector<const Graph*>& scopes) {
    Attribute out;
    switch (a.type()) {
      case onnx::AttributeProto::FLOAT: out.kind = Attribute::Kind::kFloat; out.f = a.f(); break;
      case onnx::AttributeProto::INT: out.kind = Attribute::Kind::kInt; out.i = a.i(); break;
      case onnx::AttributeProto::STRING: out.kind = Attribute::Kind::kString; out.s = a.s(); break;
      case onnx::AttributeProto::TENSOR:
        out.kind = Attribute::Kind::kTensor;
        out.t = tensor_from_proto(a.t(), base_dir);
        break;
      case onnx::AttributeProto::GRAPH:
        out.kind = Attribute::Kind::kGraph;
        out.g = import_graph(a.g(), depth + 1, scopes);
        break;
      case onnx::AttributeProto::FLOATS:
        out.kind = Attribute::Kind::kFloats;
        out.floats.assign(a.floats().begin(), a.floats().end());
        break;
      case onnx::AttributeProto::INTS:
        out.kind = Attribute::Kind::kInts;
        out.ints.assign(a.ints().begin(), a.ints().end());
        break;
      case onnx::AttributeProto::STRINGS:
        out.kind = Attribute::Kind::kStrings;
        out.strings.assign(a.strings().begin(), a.strings().end());
        break;
      default:
        throw Error(where + ": attribute '" + a.name() + "' has unsupported type " + std::to_string(a.type()));
    }
    return out;
  }

  // Dense tensors in and out of a model; a subgraph (Loop body) may also carry sequences.
  static void require_tensor_type(const onnx::ValueInfoProto& info, const std::string& kind, bool subgraph) {
    if (!info.has_type() || info.type().has_tensor_type()) return;
    if (subgraph && info.type().has_sequence_type()) return;
    const auto& t = info.type();
    std::string what = t.has_sequence_type() ? "sequence" : t.has_optional_type() ? "optional" : t.has_map_type() ? "map"
                       : t.has_sparse_tensor_type() ? "sparse tensor" : "non-tensor";
    throw Error(kind + " '" + info.name() + "' has " + what + " type; only dense tensors are supported");
  }

  static void fill_type(Value& v, const onnx::ValueInfoProto& info) {
    if (!info.has_type() || !info.type().has_tensor_type()) return;
    const auto& tt = info.type().tensor_type();
    if (tt.elem_type() != 0) v.dtype = dtype_from_onnx(tt.elem_type(), "value '" + info.name() + "'");
    if (tt.has_shape()) {
      std::vector<Dim> dims;
      for (const auto& d : tt.shape().dim()) {
        Dim dim;
        if (d.has_dim_value()) dim.value = d.dim_value();
        else if (d.has_dim_param()) dim.param = d.dim_param();
        dims.push_back(dim);
      }
      v.shape = dims;
    }
  }

  std::shared_ptr<Graph> import_graph(const onnx::GraphProto& gp, int depth, std::vector<const Graph*> scopes) {
    SY_CHECK(depth <= kMaxSubgraphDepth, "graph '" + gp.name() + "': subgraphs nested deeper than " +
                                             std::to_string(kMaxSubgraphDepth));
    SY_CHECK(gp.sparse_initializer_size() == 0, "graph '" + gp.name() + "': sparse initializers are not supported");
    SY_CHECK(gp.node_size() <= kMaxNodesPerGraph, "graph '" + gp.name() + "' has " + std::to_string(gp.node_size()) +
                                                      " nodes, more than the limit of " + std::to_string(kMaxNodesPerGraph));
    auto g = std::make_shared<Graph>();
    g->name = gp.name();
    std::set<std::string> initializer_names;
    for (const auto& init : gp.initializer()) {
      SY_CHECK(!init.name().empty(), "graph '" + gp.name() + "': initializer without a name");
      SY_CHECK(g->find(init.name()) < 0, "graph '" + gp.name() + "': duplicate initializer '" + init.name() + "'");
      Value v;
      v.name = init.name();
      v.constant = tensor_from_proto(init, base_dir);
      v.dtype = v.constant->dtype();
      std::vector<Dim> dims;
      for (int64_t d : v.constant->shape()) dims.push_back(Dim{d, ""});
      v.shape = dims;
      g->add_value(std::move(v));
      initializer_names.insert(init.name());
    }
    for (const auto& in : gp.input()) {
      if (initializer_names.count(in.name())) continue;  // an initializer listed as input (IR < 4)
      require_tensor_type(in, "graph input", depth > 0);
      SY_CHECK(g->find(in.name()) < 0, "graph '" + gp.name() + "': duplicate input '" + in.name() + "'");
      Value v;
      v.name = in.name();
      fill_type(v, in);
      g->inputs.push_back(g->add_value(std::move(v)));
    }
    std::unordered_map<std::string, const onnx::ValueInfoProto*> infos;
    for (const auto& vi : gp.value_info()) infos[vi.name()] = &vi;
    for (const auto& vi : gp.output()) infos[vi.name()] = &vi;

    // Topological order (Kahn); ONNX requires sorted nodes, but exporters are not always right.
    const int n = gp.node_size();
    std::unordered_map<std::string, int> producer;
    for (int i = 0; i < n; ++i)
      for (const auto& o : gp.node(i).output())
        if (!o.empty()) {
          SY_CHECK(!producer.count(o) && g->find(o) < 0,
                   "graph '" + gp.name() + "': value '" + o + "' is produced twice");
          producer[o] = i;
        }
    // A node also depends on values its subgraphs capture from this scope.
    std::vector<std::vector<int>> users(n);
    std::vector<int> pending(n, 0);
    std::function<void(const onnx::GraphProto&, std::set<std::string>&)> captured =
        [&](const onnx::GraphProto& sub, std::set<std::string>& names) {
          for (const auto& node : sub.node()) {
            for (const auto& in : node.input()) names.insert(in);
            for (const auto& a : node.attribute())
              if (a.has_g()) captured(a.g(), names);
          }
        };
    for (int i = 0; i < n; ++i) {
      std::set<std::string> deps(gp.node(i).input().begin(), gp.node(i).input().end());
      for (const auto& a : gp.node(i).attribute())
        if (a.has_g()) captured(a.g(), deps);
      for (const auto& in : deps) {
        auto it = producer.find(in);
        if (it != producer.end() && it->second != i) {
          users[it->second].push_back(i);
          ++pending[i];
        }
      }
    }
    std::vector<int> order, ready;
    for (int i = n - 1; i >= 0; --i)
      if (!pending[i]) ready.push_back(i);
    while (!ready.empty()) {
      int i = ready.back();
      ready.pop_back();
      order.push_back(i);
      for (auto it = users[i].rbegin(); it != users[i].rend(); ++it)
        if (--pending[*it] == 0) ready.push_back(*it);
    }
    SY_CHECK(static_cast<int>(order.size()) == n, "graph '" + gp.name() + "' has a cycle");

    std::vector<const Graph*> inner_scopes = scopes;
    inner_scopes.push_back(g.get());
    auto resolve_input = [&](const std::string& name, const std::string& where) -> int {
      int id = g->find(name);
      if (id >= 0) return id;
      for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
        int outer = (*it)->find(name);
        if (outer >= 0) {
          Value v = (*it)->values[static_cast<size_t>(outer)];
          v.constant.reset();  // captured by name; the executor binds it at run time
          v.from_outer_scope = true;
          return g->add_value(std::move(v));
        }
      }
      throw Error(where + ": input '" + name + "' is not produced by any node, input or initializer");
    };

    for (int idx : order) {
      const auto& np = gp.node(idx);
      Node node;
      node.name = np.name().empty() ? (np.op_type() + "_" + std::to_string(idx)) : np.name();
      node.op_type = np.op_type();
      node.domain = np.domain() == "ai.onnx" ? "" : np.domain();
      auto os = model.opsets.find(node.domain);
      SY_CHECK(os != model.opsets.end(), node.describe() + ": domain '" + np.domain() + "' is not imported by the model");
      node.opset = os->second;
      std::string where = node.describe();
      for (const auto& a : np.attribute()) {
        if (!a.ref_attr_name().empty()) throw Error(where + ": attribute references are only valid inside functions");
        node.attrs[a.name()] = convert_attribute(a, where, depth, inner_scopes);
      }
      for (const auto& in : np.input()) node.inputs.push_back(in.empty() ? -1 : resolve_input(in, where));
      for (const auto& out : np.output()) {
        if (out.empty()) {
          node.outputs.push_back(-1);
          continue;
        }
        Value v;
        v.name = out;
        auto it = infos.find(out);
        if (it != infos.end()) fill_type(v, *it->second);
        node.outputs.push_back(g->add_value(std::move(v)));
      }
      check_arity(node);
      g->nodes.push_back(std::move(node));
    }
    for (const auto& out : gp.output()) {
      require_tensor_type(out, "graph output", depth > 0);
      int id = g->find(out.name());
      if (id < 0) id = resolve_input(out.name(), "graph '" + gp.name() + "' output");
      Value& v = g->values[static_cast<size_t>(id)];
      if (v.dtype == DType::kUndefined || !v.shape) fill_type(v, out);
      g->outputs.push_back(id);
    }
    return g;
  }
};

}  // namespace

namespace {

void parse_model(onnx::ModelProto& proto, const std::string& bytes, const std::string& what) {
  SY_CHECK(bytes.size() <= kMaxModelBytes, what + ": model larger than the 4 GiB protobuf limit");
  SY_CHECK(proto.ParseFromString(bytes), what + ": not a valid ONNX model (protobuf parse failed; truncated or corrupt?)");
}

Model load_onnx_proto(onnx::ModelProto& proto, const std::string& base_dir, const std::string& what) {
  SY_CHECK(proto.has_graph(), what + ": ONNX model has no graph");
  SY_CHECK(proto.ir_version() >= 3 && proto.ir_version() <= 10,
           what + ": unsupported IR version " + std::to_string(proto.ir_version()) + " (supported: 3..10)");
  Model model;
  model.ir_version = proto.ir_version();
  model.producer = proto.producer_name() + " " + proto.producer_version();
  for (const auto& os : proto.opset_import()) {
    std::string domain = os.domain() == "ai.onnx" ? "" : os.domain();
    if (domain.empty())
      SY_CHECK(os.version() >= 1 && os.version() <= kMaxOnnxOpset,
               what + ": default-domain opset " + std::to_string(os.version()) + " is not supported (1.." +
                   std::to_string(kMaxOnnxOpset) + ")");
    model.opsets[domain] = static_cast<int>(os.version());
  }
  if (!model.opsets.count("")) model.opsets[""] = 1;  // IR 3 models may omit it
  for (const auto& p : proto.metadata_props()) model.metadata[p.key()] = p.value();
  SY_CHECK(proto.functions_size() == 0, what + ": model-local functions are not supported");
  // Shapes of intermediate values, with symbolic dims such as "batch" carried through, from ONNX's
  // own shape inference (Debian's libonnx knows opsets up to 17; newer models keep what they declare).
  if (model.opsets[""] <= 17) {
    try {
      onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(false, 0, false));
    } catch (const std::exception&) {
      // Best effort only: the executor computes every shape at run time anyway.
    }
  }
  Importer importer{model, base_dir};
  try {
    model.graph = importer.import_graph(proto.graph(), 0, {});
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  return model;
}

}  // namespace

Model load_onnx_bytes(const std::string& bytes, const std::string& base_dir, const std::string& what) {
  onnx::ModelProto proto;
  parse_model(proto, bytes, what);
  return load_onnx_proto(proto, base_dir, what);
}

Model load_onnx_file(const std::string& path) {
  const std::string what = "'" + path + "'";
  onnx::ModelProto proto;
  {
    // The file's bytes go as soon as they are parsed: a model's weights are held twice at most while
    // importing (protobuf, then tensors), not three times.
    const std::string bytes = read_file(path, kMaxModelBytes);
    parse_model(proto, bytes, what);
  }
  return load_onnx_proto(proto, fs::path(path).parent_path().string().empty() ? "." : fs::path(path).parent_path().string(),
                         what);
}

}  // namespace switchyard
