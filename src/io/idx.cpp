#include "io/idx.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>

namespace switchyard {

Tensor read_idx(const std::string& path) {
  std::error_code ec;
  SY_CHECK(std::filesystem::is_regular_file(path, ec), "cannot read '" + path + "': no such file");
  gzFile f = gzopen(path.c_str(), "rb");  // also reads uncompressed files
  SY_CHECK(f, "cannot open '" + path + "'");
  std::string bytes;
  char buf[1 << 16];
  int got;
  while ((got = gzread(f, buf, sizeof buf)) > 0) {
    bytes.append(buf, static_cast<size_t>(got));
    if (bytes.size() > (size_t{1} << 31)) break;
  }
  gzclose(f);
  SY_CHECK(got >= 0, "'" + path + "' is corrupt");
  SY_CHECK(bytes.size() >= 4 && bytes[0] == 0 && bytes[1] == 0 && static_cast<unsigned char>(bytes[2]) == 0x08,
           "'" + path + "' is not an unsigned-byte IDX file");
  const size_t ndim = static_cast<unsigned char>(bytes[3]);
  SY_CHECK(ndim >= 1 && ndim <= 4 && bytes.size() >= 4 + 4 * ndim, "'" + path + "': bad IDX header");
  Shape shape;
  for (size_t d = 0; d < ndim; ++d) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + 4 + 4 * d);
    shape.push_back((int64_t{p[0]} << 24) | (int64_t{p[1]} << 16) | (int64_t{p[2]} << 8) | p[3]);
  }
  Tensor t(DType::kUInt8, shape);
  SY_CHECK(bytes.size() - 4 - 4 * ndim == t.nbytes(), "'" + path + "': data size does not match its header");
  std::memcpy(t.raw(), bytes.data() + 4 + 4 * ndim, t.nbytes());
  return t;
}

}  // namespace switchyard
