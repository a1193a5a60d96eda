#include "io/npy.h"

#include <zip.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

namespace switchyard {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxArrayBytes = size_t{8} << 30;

struct DescrEntry {
  const char* descr;
  DType dtype;
};
const DescrEntry kDescrs[] = {{"<f4", DType::kFloat32}, {"<f8", DType::kFloat64}, {"<f2", DType::kFloat16},
                              {"<i8", DType::kInt64},   {"<i4", DType::kInt32},   {"<i2", DType::kInt16},
                              {"|i1", DType::kInt8},    {"|u1", DType::kUInt8},   {"<u2", DType::kUInt16},
                              {"<u4", DType::kUInt32},  {"<u8", DType::kUInt64},  {"|b1", DType::kBool}};

std::string header_value(const std::string& header, const std::string& key, const std::string& what) {
  size_t k = header.find("'" + key + "'");
  SY_CHECK(k != std::string::npos, what + ": .npy header has no '" + key + "'");
  size_t colon = header.find(':', k);
  SY_CHECK(colon != std::string::npos, what + ": malformed .npy header");
  size_t start = header.find_first_not_of(' ', colon + 1);
  SY_CHECK(start != std::string::npos, what + ": malformed .npy header");
  size_t end;
  if (header[start] == '(') end = header.find(')', start) + 1;
  else if (header[start] == '\'') end = header.find('\'', start + 1) + 1;
  else end = header.find_first_of(",}", start);
  SY_CHECK(end != std::string::npos && end > start && end <= header.size(), what + ": malformed .npy header");
  return header.substr(start, end - start);
}

}  // namespace

Tensor parse_npy(const std::string& bytes, const std::string& what) {
  SY_CHECK(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, what + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else {
    SY_CHECK(major == 2 || major == 3, what + ": unsupported .npy version " + std::to_string(major));
    SY_CHECK(bytes.size() >= 12, what + ": truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + static_cast<size_t>(i)])) << (8 * i);
    offset = 12;
  }
  SY_CHECK(header_len <= 1 << 20 && offset + header_len <= bytes.size(), what + ": truncated .npy header");
  const std::string header = bytes.substr(offset, header_len);
  std::string descr = header_value(header, "descr", what);
  SY_CHECK(descr.size() >= 2, what + ": malformed dtype");
  descr = descr.substr(1, descr.size() - 2);
  // Strip the byte-order mark: little-endian ('<'), native ('='), or not applicable ('|', or any
  // mark on a one-byte type). Big-endian multi-byte data is refused below.
  std::string kind = descr;
  if (kind.size() == 3 && (kind[0] == '<' || kind[0] == '=' || kind[0] == '|' || kind[2] == '1')) kind = kind.substr(1);
  DType dtype = DType::kUndefined;
  for (const auto& e : kDescrs)
    if (kind == e.descr + 1) dtype = e.dtype;
  SY_CHECK(dtype != DType::kUndefined, what + ": unsupported dtype '" + descr + "' (big-endian, strings and objects are not supported)");
  SY_CHECK(header_value(header, "fortran_order", what) == "False", what + ": Fortran-ordered arrays are not supported");
  std::string shape_text = header_value(header, "shape", what);
  SY_CHECK(shape_text.size() >= 2 && shape_text.front() == '(' && shape_text.back() == ')', what + ": malformed shape");
  Shape shape;
  std::string inner = shape_text.substr(1, shape_text.size() - 2);
  size_t pos = 0;
  while (pos < inner.size()) {
    size_t comma = inner.find(',', pos);
    std::string part = inner.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t a = part.find_first_not_of(' '), b = part.find_last_not_of(' ');
    if (a != std::string::npos) {
      part = part.substr(a, b - a + 1);
      SY_CHECK(!part.empty() && part.size() < 19 && part.find_first_not_of("0123456789") == std::string::npos,
               what + ": invalid dimension '" + part + "' in shape");
      shape.push_back(std::stoll(part));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  int64_t n;
  try {
    n = checked_numel(shape);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  const size_t data_bytes = static_cast<size_t>(n) * dtype_size(dtype);
  SY_CHECK(data_bytes <= kMaxArrayBytes, what + ": array too large");
  const size_t data_off = offset + header_len;
  SY_CHECK(bytes.size() - data_off == data_bytes, what + ": holds " + std::to_string(bytes.size() - data_off) +
                                                      " data bytes, shape " + shape_str(shape) + " needs " +
                                                      std::to_string(data_bytes));
  Tensor t(dtype, shape);
  if (data_bytes) std::memcpy(t.raw(), bytes.data() + data_off, data_bytes);
  if (dtype == DType::kBool)  // canonicalise bytes so bools are 0/1
    for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = reinterpret_cast<const uint8_t*>(bytes.data() + data_off)[i] != 0;
  return t;
}

std::string serialize_npy(const Tensor& t) {
  const char* descr = nullptr;
  DType dt = t.dtype() == DType::kBFloat16 ? DType::kUndefined : t.dtype();
  for (const auto& e : kDescrs)
    if (e.dtype == dt) descr = e.descr;
  Tensor converted;
  const Tensor* src = &t;
  if (!descr) {  // bfloat16 has no NumPy dtype: write float32
    converted = Tensor(DType::kFloat32, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) converted.data<float>()[i] = static_cast<float>(t.as_double(i));
    src = &converted;
    descr = "<f4";
  }
  std::string shape = "(";
  for (size_t i = 0; i < src->shape().size(); ++i) shape += std::to_string(src->shape()[i]) + (src->shape().size() == 1 ? "," : (i + 1 < src->shape().size() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(static_cast<const char*>(src->raw()), src->nbytes());
  return out;
}

Tensor read_npy(const std::string& path) {
  std::error_code ec;
  SY_CHECK(fs::is_regular_file(path, ec), "cannot read '" + path + "': no such file");
  auto size = fs::file_size(path, ec);
  SY_CHECK(!ec && size <= kMaxArrayBytes, "cannot read '" + path + "'");
  std::ifstream in(path, std::ios::binary);
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  SY_CHECK(in.gcount() == static_cast<std::streamsize>(size), "short read on '" + path + "'");
  return parse_npy(bytes, "'" + path + "'");
}

std::vector<std::pair<std::string, Tensor>> read_npz(const std::string& path) {
  std::error_code ec;
  SY_CHECK(fs::is_regular_file(path, ec), "cannot read '" + path + "': no such file");
  int err = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err), zip_discard);
  if (!archive) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    std::string msg = zip_error_strerror(&ze);
    zip_error_fini(&ze);
    throw Error("'" + path + "' is not a readable .npz archive: " + msg);
  }
  std::vector<std::pair<std::string, Tensor>> out;
  zip_int64_t n = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    SY_CHECK(zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &st) == 0, "'" + path + "': cannot stat member");
    std::string name = st.name;
    SY_CHECK(st.size <= kMaxArrayBytes, "'" + path + "': member '" + name + "' is too large");
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0), zip_fclose);
    SY_CHECK(f, "'" + path + "': cannot open member '" + name + "'");
    std::string bytes(st.size, '\0');
    zip_int64_t got = st.size ? zip_fread(f.get(), bytes.data(), st.size) : 0;
    SY_CHECK(got == static_cast<zip_int64_t>(st.size), "'" + path + "': member '" + name + "' is corrupt or truncated");
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    out.emplace_back(name, parse_npy(bytes, "'" + path + "' member '" + name + "'"));
  }
  return out;
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors) {
  fs::path target(path);
  fs::path tmp = target;
  tmp += ".tmp-switchyard";
  std::error_code ec;
  fs::remove(tmp, ec);
  int err = 0;
  zip_t* archive = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  SY_CHECK(archive, "cannot create '" + path + "'");
  std::vector<std::string> buffers;
  buffers.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    buffers.push_back(serialize_npy(t));
    zip_source_t* src = zip_source_buffer(archive, buffers.back().data(), buffers.back().size(), 0);
    if (!src || zip_file_add(archive, (name + ".npy").c_str(), src, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8) < 0) {
      if (src) zip_source_free(src);
      zip_discard(archive);
      fs::remove(tmp, ec);
      throw Error("cannot add '" + name + "' to '" + path + "'");
    }
  }
  if (zip_close(archive) != 0) {
    zip_discard(archive);
    fs::remove(tmp, ec);
    throw Error("cannot write '" + path + "'");
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("cannot write '" + path + "'");
  }
}

}  // namespace switchyard
